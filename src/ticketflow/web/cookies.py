"""Cookies the pages set: decided anywhere while a request runs, written on its answer
(whatever answer that is: a page, a redirect, an error page) by `QueuedCookies`."""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow.api.client_ip import client_scheme
from ticketflow.api.hardening import is_page
from ticketflow.api.rate_limits import RateLimits
from ticketflow.config import Settings

_STATE = "ticketflow.cookies"


def wants_secure_cookies(request: Request) -> bool:
    """Whether our cookies are `Secure` (sent back over https only): when the browser reached
    us over https, directly or through a trusted proxy (TICKETFLOW_TRUSTED_PROXIES, its
    X-Forwarded-Proto), and always in production. A plain-http deployment elsewhere can still
    sign in (a browser drops a Secure cookie set over http)."""
    settings: Settings = request.app.state.settings
    if settings.environment == "production":
        return True
    limits: RateLimits = request.app.state.rate_limits  # it holds the trusted proxies
    return client_scheme(request.scope, limits.proxies) == "https"


def set_cookie(request: Request, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Lax, Secure as `wants_secure_cookies` decides; `max_age` None: a
    browser-session cookie."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[name] = value
    morsel = cookie[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Lax"
    if max_age is not None:
        morsel["max-age"] = max_age
    if wants_secure_cookies(request):
        morsel["secure"] = True
    request.scope.setdefault("state", {}).setdefault(_STATE, {})[name] = morsel.OutputString()


def clear_cookie(request: Request, name: str) -> None:
    set_cookie(request, name, "", max_age=0)


class QueuedCookies:
    """Adds the cookies queued by `set_cookie` to the answer of a page request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                queued: dict[str, str] = scope.get("state", {}).get(_STATE, {})
                if queued:
                    message["headers"] = [
                        *message.get("headers", ()),
                        *((b"set-cookie", value.encode("latin-1")) for value in queued.values()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_cookies)
