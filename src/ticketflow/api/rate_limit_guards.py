"""Where the rate limits apply: a middleware for the per-IP default, dependencies for the routes
with limits of their own (login, registration, password changes and resets, bookings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketflow.api.caller import looks_signed_in
from ticketflow.api.client_ip import client_ip
from ticketflow.api.deps import CurrentActor
from ticketflow.api.errors import problem
from ticketflow.api.rate_limits import RateLimits
from ticketflow.config import Settings
from ticketflow.domain.errors import TooManyRequests

API = "/api/v1"
# Requests counted by a limit of their own (when signed in: the booking limit is per user, so
# an anonymous or malformed-token booking counts against its IP like anything else), and probes
# and scrapes (a load balancer or Prometheus asks from one address).
OWN_LIMITS = {
    ("POST", f"{API}/auth/login"),
    ("POST", f"{API}/auth/register"),
    ("POST", f"{API}/bookings"),
}
UNLIMITED_PATHS = {"/health", "/health/ready", "/metrics"}


def _counted_elsewhere(scope: Scope) -> bool:
    return scope["path"] != f"{API}/bookings" or looks_signed_in(scope)


class DefaultRateLimitMiddleware:
    """The per-IP default for every request without a limit of its own; 429 problem+json."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self.limits.enabled:  # a handshake is a request too
            try:
                await self.limits.check_default(client_ip(scope, self.limits.proxies))
            except TooManyRequests:
                await send({"type": "websocket.close", "code": 1013, "reason": "rate limited"})
                return
        if (
            scope["type"] != "http"
            or not self.limits.enabled
            or scope["path"] in UNLIMITED_PATHS
            or ((scope["method"], scope["path"]) in OWN_LIMITS and _counted_elsewhere(scope))
        ):
            await self.app(scope, receive, send)
            return
        try:
            await self.limits.check_default(client_ip(scope, self.limits.proxies))
        except TooManyRequests as refused:
            answer = problem(
                Request(scope),
                refused.status,
                refused.code,
                refused.title,
                refused.detail,
                headers={"Retry-After": str(refused.retry_after)},
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    limits = RateLimits(settings)
    app.state.rate_limits = limits
    app.add_middleware(DefaultRateLimitMiddleware, limits=limits)


# Dependencies are coroutines: FastAPI runs a plain `def` one in a worker thread, a hop that cost
# more than the work on the booking path.
async def _rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(_rate_limits)]


async def _client_ip(request: Request, limits: RateLimitsDep) -> str:
    return client_ip(request.scope, limits.proxies)


ClientIp = Annotated[str, Depends(_client_ip)]


async def _limit_password_hashing(limits: RateLimitsDep, ip: ClientIp) -> None:
    await limits.check_password_hashing(ip)


async def _limit_bookings(limits: RateLimitsDep, actor: CurrentActor) -> None:
    await limits.check_booking(actor.user_id)


# For a route's `dependencies=[...]`.
PASSWORD_HASHING_LIMIT = Depends(_limit_password_hashing)
BOOKING_LIMIT = Depends(_limit_bookings)
