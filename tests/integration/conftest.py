"""Fixtures for the security tests: the stacks the app runs on (with Redis, or embedded), and
apps served in-process to clients at chosen IP addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import redis
from fastapi import FastAPI

from ticketflow.adapters.clock import Clock
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus

from ..conftest import FAST_PASSWORDS, settings_for, wipe

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
    settings: Settings, clock: Clock, *, wipe_first: bool = True
) -> AsyncIterator[RunningApp]:
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with app.router.lifespan_context(app):
        running = RunningApp(app)
        if wipe_first:
            await wipe(running.bus.engine)
        try:
            yield running
        finally:
            for client in running._clients:
                await client.aclose()
