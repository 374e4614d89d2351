"""create_app(): the FastAPI application, its lifespan (engine, sweeper) and middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from ticketflow import serving_workers
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.payment_gateway import PaymentGateway
from ticketflow.adapters.security import Passwords
from ticketflow.api.booking_hot_path import BookingHotPath, HotPathRoute
from ticketflow.api.direct_routes import direct_routes
from ticketflow.api.errors import install_error_handlers
from ticketflow.api.hardening import install_hardening
from ticketflow.api.idempotency import IdempotencyMiddleware, KeyedRequests
from ticketflow.api.load_shedding import install_load_shedding
from ticketflow.api.observability import install_observability
from ticketflow.api.openapi_contract import document_api_contract
from ticketflow.api.rate_limit_guards import install_rate_limits
from ticketflow.api.routes import (
    admin,
    auth,
    bookings,
    events,
    health,
    live,
    payments,
    waiting_room,
    webhooks,
)
from ticketflow.api.routes import check_ins as check_in_routes
from ticketflow.api.routes import metrics as metrics_routes
from ticketflow.api.routes.live import StreamCaps
from ticketflow.api.stored_bodies import StoredBodies
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.gc_tuning import collect_for, settle_for_serving
from ticketflow.logging_setup import configure_logging
from ticketflow.metrics import forget_this_process, shared_between_processes
from ticketflow.production_safety import refuse_unsafe_production
from ticketflow.services.consumer_runtime import CONSUMERS, run_consumer
from ticketflow.services.graceful_shutdown import (
    FLUSH_SHARE_OF_GRACE,
    flush_outbox,
    stop_background_jobs,
)
from ticketflow.services.live_availability import live_availability_for
from ticketflow.services.outbox_relay import redis_relay
from ticketflow.services.requests_in_flight import RequestsInFlight
from ticketflow.services.sweeper import reconcile_once, run_periodically, sweep_once
from ticketflow.services.webhook_delivery import deliver_webhooks_forever
from ticketflow.tracing import (
    fastapi_telemetry,
    instrument,
    tracer_provider_from_environment,
    uninstrument,
)
from ticketflow.web import install_web

API_PREFIX = "/api/v1"


def create_served_app() -> FastAPI:
    """The app as `ticketflow serve` runs it (granian calls this in each worker), configured
    from the environment."""
    return served(create_app())


def served(app: FastAPI) -> FastAPI:
    """`app` as a server runs it: once started, its garbage collector settled for serving and
    following how busy the process is (gc_tuning.py). Not for tests sharing one process."""
    start_and_stop = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_and_stop(app):
            settle_for_serving()
            app.state.in_flight.on_busy_change = collect_for
            yield

    app.router.lifespan_context = lifespan
    return app


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    passwords: Passwords | None = None,
    payment_gateway: PaymentGateway | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The app; tests inject a clock, cheap password hashing, a gateway on another transport or
    a tracer provider (else OTEL_* variables decide whether requests are traced)."""
    settings = settings or Settings()
    refuse_unsafe_production(settings)
    configure_logging(settings.log_format, settings.log_level)
    tracer_provider = tracer_provider or tracer_provider_from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = build_bus(settings, clock, passwords, payment_gateway)
        app.state.bus = bus
        app.state.keyed_requests = KeyedRequests(bus)
        app.state.hot_path = BookingHotPath(bus, app.state.rate_limits, app.state.keyed_requests)
        if tracer_provider is not None:
            instrument(tracer_provider, bus.engine)
        app.state.live = live_availability_for(bus)  # follows the events from its first client
        app.state.live_caps = StreamCaps(
            settings.live_streams_per_ip, settings.live_streams_per_process
        )
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
        relay = None
        lull = app.state.in_flight.lull  # events wait while buyers are being answered
        if settings.run_relay and bus.deps.redis is not None:  # embedded: consumers read the store
            relay = redis_relay(bus)
            jobs.append(
                run_periodically(
                    "outbox relay",
                    lambda _: relay.relay_pending(),
                    bus,
                    settings.relay_interval_seconds,
                    lull,
                )
            )
        if settings.run_consumers:
            jobs.extend(
                run_consumer(bus, spec, settings.consumer_idle_seconds, lull) for spec in CONSUMERS
            )
        if settings.run_webhook_deliveries:
            jobs.append(deliver_webhooks_forever(bus))
        if shared_between_processes():  # a scrape reaches one worker: the others keep theirs
            jobs.append(
                run_periodically(
                    "metrics sampler", metrics_routes.keep_process_gauges_fresh, bus, 5.0
                )
            )
        jobs.append(serving_workers.sign_in_once_listening())
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            yield
        finally:
            serving_workers.signed_out()
            await app.state.live.aclose()
            await stop_background_jobs(
                tasks, settings.shutdown_grace_seconds * FLUSH_SHARE_OF_GRACE
            )
            if relay is not None:  # publish what committed since its last round, store the position
                await flush_outbox(relay, settings.shutdown_grace_seconds)
            await bus.deps.payments.aclose()
            await app.state.rate_limits.aclose()
            if bus.deps.redis is not None:
                await bus.deps.redis.aclose()
            await bus.engine.dispose()
            if tracer_provider is not None:
                uninstrument()
            forget_this_process()

    app = FastAPI(
        title="TicketFlow",
        version="0.1.0",
        summary="Event ticket booking that never oversells.",
        lifespan=lifespan,
        telemetry=fastapi_telemetry(tracer_provider),
    )
    app.state.settings = settings
    app.state.in_flight = RequestsInFlight(
        settings.busy_requests_in_flight, settings.background_patience_seconds
    )
    app.state.stored_bodies = StoredBodies()  # public catalog answers as bytes (routes/events.py)
    install_error_handlers(app)
    # POST /bookings, a flash sale's traffic: the hot path first; it hands what it doesn't
    # serve to the ordinary route of routes/bookings.py (see api/booking_hot_path.py).
    app.router.routes.insert(0, HotPathRoute())  # first: matched before any other
    app.router.routes[1:1] = direct_routes()  # what crowds send most, likewise
    for router in (auth.router, events.router, bookings.router, payments.router, admin.router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(check_in_routes.router, prefix=API_PREFIX)
    app.include_router(webhooks.router, prefix=API_PREFIX)
    app.include_router(live.router, prefix=API_PREFIX)
    app.include_router(waiting_room.router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    install_web(app)  # the pages at /, outside the OpenAPI schema
    app.add_middleware(IdempotencyMiddleware, fastapi_app=app)
    install_rate_limits(app, settings)  # the per-IP default, before any work on the request
    install_hardening(app, settings)  # body size limit, CORS, security headers
    install_load_shedding(app, settings)  # past capacity: 503 + Retry-After before any work
    install_observability(app)  # outermost: request id, access log line, request metrics
    document_api_contract(app)
    return app
