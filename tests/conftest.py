"""Shared fixtures: throwaway PostgreSQL and SQLite databases built by the real migrations."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters import migrations
from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.security import Passwords
from ticketflow.adapters.tables import metadata
from ticketflow.api.app import create_app
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus

from .builders import app_bus

# The server that holds our throwaway databases; never a database of anyone else's.
PG_SERVER_URL = os.environ.get(
    "TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["postgresql", "sqlite"]

# Cheap argon2 parameters for tests only: hashing cost is not what these tests measure.
FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


async def _on_server(statement: str) -> None:
    connection = await asyncpg.connect(PG_SERVER_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database named `<prefix>_<random>`, migrated to head, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_on_server(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(Settings(database_url=url))
        yield url
    finally:
        asyncio.run(_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run."""
    with migrated_database("ticketflow_test") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server of our own (tests may FLUSHALL it), stopped at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # ready when it answers PING
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.02)  # polling backoff while it starts, not synchronization
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'ticketflow.db'}"
    migrations.upgrade(Settings(database_url=url))
    return url


def settings_for(url: str, **overrides: object) -> Settings:
    # Availability is read live in tests (cached it may lag a second, by design).
    values: dict[str, Any] = {
        "run_sweeper": False,
        "run_reconciler": False,
        "run_relay": False,  # tests that relay events start a relay of their own
        "run_consumers": False,  # tests that consume events run the consumer themselves
        "run_webhook_deliveries": False,  # webhook tests drive the delivery worker themselves
        "availability_cache_ttl_seconds": 0,
        "rate_limits": "off",  # tests that check limits turn them on
        # Webhooks go to the tests' local receivers; the SSRF tests turn the guard back on.
        "webhook_allow_private_networks": True,
        **overrides,
    }
    return Settings(database_url=url, **values)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings for each backend in turn: the same test runs on PostgreSQL and on SQLite."""
    return settings_for(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def pg_settings(postgresql_url: str) -> Settings:
    return settings_for(postgresql_url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


async def wipe(engine: AsyncEngine) -> None:
    """Empty every table so each test starts from a clean database. On PostgreSQL with
    TRUNCATE: the event store refuses DELETE (append-only), but a throwaway database may go."""
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {names}"))
            return
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def bus(
    request: pytest.FixtureRequest, settings: Settings, clock: ManualClock
) -> AsyncIterator[MessageBus]:
    """The bus of the test's app: the one the `client` fixture's app runs on if the test has it
    (never a second bus beside it), else one of its own on an emptied database."""
    if "client" in request.fixturenames:
        yield app_bus(request.getfixturevalue("client"))
        return
    bus = build_bus(settings, clock, FAST_PASSWORDS)
    await wipe(bus.engine)
    try:
        yield bus
    finally:
        await bus.engine.dispose()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """`app` started (lifespan) on an emptied database, in-process over httpx;
    `client.app_bus` is the bus the app runs on."""
    async with app.router.lifespan_context(app):
        await wipe(app.state.bus.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app_bus = app.state.bus  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process over httpx (see `serving`)."""
    async with serving(create_app(settings, clock, FAST_PASSWORDS)) as client:
        yield client


async def scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), params)
