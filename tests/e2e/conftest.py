"""End-to-end fixtures: a wiped PostgreSQL database, a bus on it, app servers serving it, and the
sandbox payment provider as a process of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from ticketflow.adapters.ids import new_id
from ticketflow.adapters.tables import users
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain.model import Actor, Role
from ticketflow.services.messagebus import MessageBus

from ..builders import PASSWORD, Account
from ..conftest import FAST_PASSWORDS, settings_for, wipe
from .servers import ServerProcess, running_provider, running_servers, server_env

# The servers verify the tokens the test mints, so both sides sign with this.
E2E_JWT_SECRET = "e2e-test-secret-never-used-outside-tests"
APP_SERVERS = 4


async def buyers(bus: MessageBus, count: int) -> list[Account]:
    """`count` buyer accounts inserted in one statement (one shared hash), with their tokens."""
    password_hash = await FAST_PASSWORDS.hash(PASSWORD)
    now = bus.deps.clock.now()
    run = uuid.uuid4().hex[:8]
    emails = [f"buyer-{run}-{index}@example.com" for index in range(count)]
    actors = [Actor(new_id(), Role.USER) for _ in emails]
    rows = [
        {
            "id": actor.user_id,
            "email": email,
            "password_hash": password_hash,
            "role": actor.role.value,
            "version": 1,
            "created_at": now,
        }
        for actor, email in zip(actors, emails, strict=True)
    ]
    async with bus.engine.begin() as connection:
        await connection.execute(insert(users), rows)
    return [
        # Sessions of their own are not needed: a token is good unless its session was revoked.
        Account(
            actor, email, bus.deps.tokens.access_token(actor.user_id, actor.role, new_id(), now)
        )
        for actor, email in zip(actors, emails, strict=True)
    ]


@pytest.fixture
def e2e_settings(postgresql_url: str) -> Settings:
    return settings_for(postgresql_url, jwt_secret=E2E_JWT_SECRET)


@pytest.fixture
async def e2e_bus(e2e_settings: Settings) -> AsyncIterator[MessageBus]:
    """The test's own bus (system clock) for seeding and checking; the database wiped around it."""
    bus = build_bus(e2e_settings, passwords=FAST_PASSWORDS)
    await wipe(bus.engine)
    try:
        yield bus
    finally:
        try:
            await wipe(bus.engine)
        finally:
            await bus.deps.payments.aclose()
            await bus.engine.dispose()


@pytest.fixture
async def app_servers(
    e2e_bus: MessageBus, e2e_settings: Settings, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    """Separate `ticketflow serve` processes on one database, started after it was wiped."""
    env = server_env(e2e_settings.database_url, e2e_settings.jwt_secret)
    async with running_servers(APP_SERVERS, env, tmp_path) as servers:
        yield servers


@pytest.fixture
async def payment_provider(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    """`ticketflow payment-provider` with a fresh ledger in the test's own directory."""
    async with running_provider(tmp_path / "ledger.db", tmp_path) as provider:
        yield provider


@pytest.fixture
async def provider_client(payment_provider: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the provider's ledger and fault controls."""
    async with httpx.AsyncClient(base_url=payment_provider.base_url, timeout=10.0) as client:
        yield client
