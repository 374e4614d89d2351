"""create_app(): the FastAPI application, its lifespan (engine, sweeper) and middleware."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.security import Passwords
from ticketflow.api.errors import install_error_handlers
from ticketflow.api.routes import admin, auth, bookings, events, health
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.services.messagebus import current_request_id
from ticketflow.services.sweeper import run_sweeper

API_PREFIX = "/api/v1"


class RequestIdMiddleware:
    """Takes `X-Request-ID` from the caller (or makes one), scopes it to the request, returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given[:64] if given.isprintable() and given else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        token = current_request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    passwords: Passwords | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = build_bus(settings, clock, passwords)
        app.state.bus = bus
        sweeper = asyncio.create_task(run_sweeper(bus)) if settings.run_sweeper else None
        try:
            yield
        finally:
            if sweeper:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await bus.engine.dispose()

    app = FastAPI(
        title="TicketFlow",
        version="0.1.0",
        summary="Event ticket booking that never oversells.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (auth.router, events.router, bookings.router, admin.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.add_middleware(RequestIdMiddleware)
    return app
