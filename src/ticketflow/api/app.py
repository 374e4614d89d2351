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
from ticketflow.adapters.payment_gateway import PaymentGateway
from ticketflow.adapters.security import Passwords
from ticketflow.api.errors import install_error_handlers
from ticketflow.api.hardening import install_hardening
from ticketflow.api.idempotency import IdempotencyMiddleware
from ticketflow.api.openapi_contract import document_api_contract
from ticketflow.api.rate_limit_guards import install_rate_limits
from ticketflow.api.routes import admin, auth, bookings, events, health, payments
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.production_safety import refuse_unsafe_production
from ticketflow.services.messagebus import current_request_id
from ticketflow.services.outbox_relay import redis_relay
from ticketflow.services.sweeper import reconcile_once, run_periodically, sweep_once

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
    payment_gateway: PaymentGateway | None = None,
) -> FastAPI:
    """The app; tests inject a clock, cheap password hashing or a gateway on another transport."""
    settings = settings or Settings()
    refuse_unsafe_production(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = build_bus(settings, clock, passwords, payment_gateway)
        app.state.bus = bus
        jobs = []
        if settings.run_sweeper:
            jobs.append(
                run_periodically("hold sweeper", sweep_once, bus, settings.sweep_interval_seconds)
            )
        if settings.run_reconciler:
            jobs.append(
                run_periodically(
                    "payment reconciler", reconcile_once, bus, settings.reconcile_interval_seconds
                )
            )
        if settings.run_relay and bus.deps.redis is not None:  # embedded: consumers read the store
            relay = redis_relay(bus)
            jobs.append(
                run_periodically(
                    "outbox relay",
                    lambda _: relay.relay_pending(),
                    bus,
                    settings.relay_interval_seconds,
                )
            )
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await bus.deps.payments.aclose()
            await app.state.rate_limits.aclose()
            if bus.deps.redis is not None:
                await bus.deps.redis.aclose()
            await bus.engine.dispose()

    app = FastAPI(
        title="TicketFlow",
        version="0.1.0",
        summary="Event ticket booking that never oversells.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in (auth.router, events.router, bookings.router, payments.router, admin.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.add_middleware(IdempotencyMiddleware, fastapi_app=app)
    install_rate_limits(app, settings)  # the per-IP default, before any work on the request
    install_hardening(app, settings)  # body size limit, CORS, security headers
    app.add_middleware(RequestIdMiddleware)
    document_api_contract(app)
    return app
