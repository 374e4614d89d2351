"""The event store is append-only in fact, versions are optimistic locks, admins read it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ticketflow.adapters import event_store
from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.events import EventPublished
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, account, app_bus, event_on_sale
from ..conftest import FAST_PASSWORDS, wipe


@pytest.fixture
async def pg_bus(pg_settings: Settings, clock: ManualClock) -> AsyncIterator[MessageBus]:
    bus = build_bus(pg_settings, clock, FAST_PASSWORDS)
    await wipe(bus.engine)
    try:
        yield bus
    finally:
        await bus.engine.dispose()


async def test_postgresql_refuses_to_rewrite_or_delete_events(pg_bus: MessageBus) -> None:
    """PostgreSQL's trigger; the embedded SQLite keeps the rule by convention only."""
    bus = pg_bus
    await event_on_sale(bus)
    count = "SELECT count(*) FROM domain_events"
    async with bus.engine.connect() as connection:
        before = await connection.scalar(text(count))
    for statement in ("UPDATE domain_events SET type = 'forged'", "DELETE FROM domain_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with bus.engine.begin() as connection:
                await connection.execute(text(statement))
    async with bus.engine.connect() as connection:
        assert await connection.scalar(text(count)) == before


async def test_two_writers_of_one_stream_version_one_wins(bus: MessageBus) -> None:
    stream = uuid.uuid4()

    async def append() -> None:
        async with bus.engine.begin() as connection:
            event = EventPublished(stream_id=stream, version=2)
            await event_store.append(connection, [(event, EventMeta())], bus.deps.clock.now())

    outcomes = await asyncio.gather(append(), append(), return_exceptions=True)
    assert sum(outcome is None for outcome in outcomes) == 1
    assert sum(isinstance(outcome, IntegrityError) for outcome in outcomes) == 1


async def test_admin_reads_the_trail_filtered_and_paged(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(client)
    admin = await account(bus, Role.ADMIN)
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    tier = sale.ticket_types[0].id
    booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    clock.advance(60)
    await bus.handle(cmd.CancelBooking(buyer.actor, booking.id))
    url = f"{API}/admin/audit"
    stream = (
        await client.get(
            url,
            headers=admin.headers,
            params={"stream_type": "booking", "stream_id": str(booking.id)},
        )
    ).json()["items"]
    assert [(e["type"], e["version"]) for e in stream] == [
        ("booking.held", 1),
        ("booking.cancelled", 2),
    ]
    assert stream[0]["actor_id"] == str(buyer.actor.user_id)
    later = (
        await client.get(
            url,
            headers=admin.headers,
            params={"since": (clock.now() - timedelta(seconds=30)).isoformat()},
        )
    ).json()["items"]
    assert [e["type"] for e in later] == ["booking.cancelled"]
    by_buyer = (
        await client.get(
            url,
            headers=admin.headers,
            params={"actor_id": str(buyer.actor.user_id), "type": "booking.held"},
        )
    ).json()["items"]
    assert len(by_buyer) == 1
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, headers=admin.headers, params=params)).json()
        seen += [e["seq"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == sorted(set(seen)) and len(seen) >= 8
    assert (await client.get(url, headers=buyer.headers)).status_code == 403
    assert (await client.get(url, headers=sale.organizer.headers)).status_code == 403
