"""HTTP hardening: a request body size limit, security headers on every answer, and the CORS
allow-list from configuration."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow.api.errors import problem
from ticketflow.config import Settings

# An API answer is never a page: nothing in it may load, run or be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc are pages: FastAPI serves them with an inline script and assets from a CDN.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
# The web pages (web/): our own static files only, nothing inline, framed by nobody but the
# embeddable widget's page (web/widget.py), which any site may frame.
_PAGE_SOURCES = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
)
PAGE_CSP = _PAGE_SOURCES + "frame-ancestors 'none'"
WIDGET_CSP = _PAGE_SOURCES + "frame-ancestors *"
WIDGET_PAGES = "/widget/"
NOT_PAGES = ("/api/", "/health", "/metrics", "/openapi.json")
HSTS = "max-age=63072000; includeSubDomains"


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI lets it out of a route's body parsing (to our handler)
    instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


def _too_large(request: Request, error: Exception) -> Response:
    assert isinstance(error, BodyTooLarge)
    return problem(request, 413, "body-too-large", "Request body too large", str(error.detail))


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: at once by Content-Length, else while reading
    (chunked uploads), before anything buffers the whole of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)  # read by a middleware, not a route

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _too_large(Request(scope), BodyTooLarge(self.max_bytes))(scope, receive, send)


def is_page(path: str) -> bool:
    """Whether `path` is one of the web pages (or their static files), not the API."""
    return not path.startswith(NOT_PAGES) and path not in DOCS_PATHS


def _csp(path: str) -> str:
    if path in DOCS_PATHS:
        return DOCS_CSP
    if path.startswith(WIDGET_PAGES):
        return WIDGET_CSP
    return PAGE_CSP if is_page(path) else API_CSP


def security_headers(path: str, production: bool) -> list[tuple[bytes, bytes]]:
    """The headers every answer on `path` carries (added by the outermost middleware, so 500s
    and refusals made before routing carry them too; see api/observability.py)."""
    added = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", _csp(path).encode()),
    ]
    if not path.startswith(WIDGET_PAGES):  # older browsers' frame-ancestors 'none'
        added.append((b"x-frame-options", b"DENY"))
    if path.startswith("/api/v1/auth/"):
        added.append((b"cache-control", b"no-store"))  # token pairs must not be cached
    if production:
        added.append((b"strict-transport-security", HSTS.encode()))
    return added


def with_headers(
    headers: list[tuple[bytes, bytes]], added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """`headers` plus those of `added` the answer does not set itself."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *((name, value) for name, value in added if name not in present)]


def cors_origins(settings: Settings) -> list[str]:
    return [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Added innermost first: the body limit, then CORS; the security headers are added around
    everything by the observability middleware."""
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(BodyTooLarge, _too_large)
    if origins := cors_origins(settings):
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "TicketFlow-Admission",  # a waiting room's admission, on POST /bookings
            ],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed"],
            allow_credentials=False,  # bearer tokens, no cookies: nothing ambient to protect
            max_age=600,
        )
