"""Fixtures for the integration tests: the stacks the app runs on (with Redis, or embedded),
apps served in-process to clients at chosen IP addresses, two app processes sharing one
database and Redis, and a door admitting the tickets of a paid booking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from redis.asyncio import Redis as AsyncRedis

from ticketflow.adapters.clock import Clock, ManualClock
from ticketflow.adapters.payment_gateway import PaymentGateway
from ticketflow.api.app import create_app
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus

from ..builders import account, app_bus, event_on_sale
from ..conftest import FAST_PASSWORDS, settings_for, wipe
from .paid_bookings import Door, paid_booking, paying_client, ticket_codes

# A port nothing listens on (the discard service is never run here): Redis "down".
DEAD_REDIS_URL = "redis://127.0.0.1:9/0"


@dataclass(frozen=True)
class Stack:
    """A database and, unless embedded, the Redis in front of it."""

    database_url: str
    redis_url: str | None

    def settings(self, **overrides: object) -> Settings:
        return settings_for(self.database_url, redis_url=self.redis_url, **overrides)


def flush(redis_url: str) -> None:
    """Empty the throwaway Redis: rate counts and revocations of earlier tests are gone."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture(params=["postgresql+redis", "postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """Each security test on PostgreSQL with Redis, on PostgreSQL embedded, and on SQLite."""
    database, _, cache = str(request.param).partition("+")
    redis_url = request.getfixturevalue("redis_url") if cache else None
    if redis_url:
        flush(redis_url)
    return Stack(request.getfixturevalue(f"{database}_url"), redis_url)


@pytest.fixture
def redis_stack(postgresql_url: str, redis_url: str) -> Stack:
    flush(redis_url)
    return Stack(postgresql_url, redis_url)


@dataclass
class RunningApp:
    """An app with its lifespan running; `client(ip)` talks to it from that address."""

    app: FastAPI
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def bus(self) -> MessageBus:
        bus: MessageBus = self.app.state.bus
        return bus

    def client(self, ip: str = "198.51.100.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        self._clients.append(client)
        return client


@asynccontextmanager
async def running_app(
    settings: Settings,
    clock: Clock,
    *,
    wipe_first: bool = True,
    payment_gateway: PaymentGateway | None = None,
) -> AsyncIterator[RunningApp]:
    app = create_app(settings, clock, FAST_PASSWORDS, payment_gateway)
    async with app.router.lifespan_context(app):
        running = RunningApp(app)
        if wipe_first:
            await wipe(running.bus.engine)
        try:
            yield running
        finally:
            for client in running._clients:
                await client.aclose()


@pytest.fixture
async def two_processes(
    pg_settings: Settings, clock: ManualClock, redis_url: str
) -> AsyncIterator[tuple[MessageBus, MessageBus]]:
    """Two app 'processes' (own engines, own marks) sharing PostgreSQL and Redis."""
    # Trusting nothing locally, each sees at once what Redis says.
    settings = pg_settings.model_copy(
        update={"redis_url": redis_url, "soldout_local_ttl_seconds": 0}
    )
    buses = [build_bus(settings, clock, FAST_PASSWORDS) for _ in range(2)]
    await wipe(buses[0].engine)
    shared = AsyncRedis.from_url(redis_url)
    await shared.flushall()
    try:
        yield buses[0], buses[1]
    finally:
        await shared.aclose()
        for bus in buses:
            await bus.engine.dispose()
            if bus.deps.redis is not None:
                await bus.deps.redis.aclose()


@pytest.fixture
async def door(settings: Settings, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Door]:
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        bus = app_bus(client)
        sale = await event_on_sale(bus, totals=(10,))
        buyer = await account(bus)
        booking_id = await paid_booking(bus, buyer, sale, quantity=2)
        yield Door(client, bus, sale, buyer, booking_id, await ticket_codes(bus, booking_id))
