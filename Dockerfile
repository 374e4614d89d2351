# syntax=docker/dockerfile:1
# TicketFlow image: `docker build -t ticketflow .`; runs `ticketflow serve` as a non-root user.

# --- build: the locked dependencies, then the project, into /app/.venv (no dev tools) ---------
FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in a layer of their own: a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime: the virtualenv only, no uv, no compiler, no sources -----------------------------
FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 ticketflow \
 && useradd --system --uid 10001 --gid ticketflow --home-dir /var/lib/ticketflow ticketflow \
 && install -d -o ticketflow -g ticketflow /var/lib/ticketflow /var/lib/ticketflow/ledger
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TICKETFLOW_ENVIRONMENT=production
# The working directory is the one place the process may write (ledger/: the sandbox provider's,
# a SQLite file when no TICKETFLOW_DATABASE_URL is given).
WORKDIR /var/lib/ticketflow
USER 10001:10001
EXPOSE 8000
# granian's main process is PID 1: SIGTERM stops accepting, finishes the requests in flight and
# exits within TICKETFLOW_SHUTDOWN_GRACE_SECONDS (give the orchestrator's stop timeout more).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["ticketflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
