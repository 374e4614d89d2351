# TicketFlow: `make run` starts the app on the embedded default; `make test` runs everything.
SHELL := /bin/bash
# uv is installed with pip when missing; `python3 -m uv` then finds it without a PATH change.
UV := $(or $(shell command -v uv 2>/dev/null),python3 -m uv)
export UV_LINK_MODE ?= copy

.PHONY: run test install lint typecheck check clean bench

install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

# The sandbox payment provider runs beside the app (and stops with it) so payments work.
run: install
	$(UV) run ticketflow migrate
	$(UV) run ticketflow seed-demo
	$(UV) run ticketflow payment-provider --port 8001 \
		--webhook-url http://127.0.0.1:8000/api/v1/payments/webhook \
		--webhook-secret "$${TICKETFLOW_PAYMENT_WEBHOOK_SECRET:-ticketflow-demo-webhook-secret}" & \
	provider=$$!; trap 'kill $$provider 2>/dev/null' EXIT INT TERM; \
	$(UV) run ticketflow serve

lint: install
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench

typecheck: install
	$(UV) run mypy src

test: install lint typecheck
	$(UV) run pytest

# The flash-sale benchmark (bench/README.md): starts its own database, redis-server and app, and
# writes bench/results/latest.{json,md}. Options: make bench BENCH_ARGS="--phases burst --buyers 2000"
bench: install
	@command -v redis-server >/dev/null || { apt-get update && apt-get install -y redis-server; }
	$(UV) run python -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache ticketflow.db* payment-provider.db*
