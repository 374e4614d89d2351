"""Two sweepers at once (two processes' worth: own engines, one clock) release each hold once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from sqlalchemy import select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import bookings
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Booking
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.sweeper import sweep_once

from ..builders import Account, EventOnSale, account, event_on_sale, hold
from ..conftest import BACKENDS, FAST_PASSWORDS, scalar, settings_for, wipe
from ..invariants import assert_invariants

HOLDS = 300
TIERS = 3
SWEEP_BATCH = 25  # small, so the two sweepers take many turns and interleave

# Bookings whose number of `booking.expired` events is not exactly one.
NOT_EXPIRED_ONCE = """
SELECT count(*) FROM bookings b
WHERE (SELECT count(*) FROM domain_events e
       WHERE e.stream_type = 'booking' AND e.stream_id = b.id AND e.type = 'booking.expired') <> 1
"""


@pytest.fixture(params=BACKENDS)
def race_settings(request: pytest.FixtureRequest) -> Settings:
    url = request.getfixturevalue(f"{request.param}_url")
    return settings_for(url, sweep_batch_size=SWEEP_BATCH)


@pytest.fixture
async def sweepers(
    race_settings: Settings, clock: ManualClock
) -> AsyncIterator[tuple[MessageBus, MessageBus]]:
    """Two buses on one database, each with its own engine (as two app processes), one clock."""
    first = build_bus(race_settings, clock, FAST_PASSWORDS)
    second = build_bus(race_settings, clock, FAST_PASSWORDS)
    await wipe(first.engine)
    try:
        yield first, second
    finally:
        await first.engine.dispose()
        await second.engine.dispose()


async def hold_many(
    bus: MessageBus, sale: EventOnSale, count: int
) -> list[tuple[Account, Booking]]:
    """`count` holds by a few buyers over every tier: quantities 1-3, every 4th on two tiers."""
    buyers = [await account(bus) for _ in range(10)]
    tiers = [ticket_type.id for ticket_type in sale.ticket_types]
    holds = []
    for index in range(count):
        lines = [(tiers[index % TIERS], 1 + (index // TIERS) % 3)]
        if index % 4 == 0:
            lines.append((tiers[(index + 1) % TIERS], 1))
        buyer = buyers[index % len(buyers)]
        booking = await hold(bus, buyer, sale.event.id, *lines)
        holds.append((buyer, booking))
    return holds


async def booking_statuses(bus: MessageBus) -> dict[UUID, str]:
    async with bus.engine.connect() as connection:
        rows = await connection.execute(select(bookings.c.id, bookings.c.status))
        return {row.id: row.status for row in rows}


async def assert_all_tickets_back(bus: MessageBus) -> None:
    assert (
        await scalar(bus.engine, "SELECT count(*) FROM ticket_types WHERE available <> total") == 0
    )
    await assert_invariants(bus.engine)


async def test_two_sweepers_release_each_expired_hold_exactly_once(
    sweepers: tuple[MessageBus, MessageBus], clock: ManualClock
) -> None:
    first, second = sweepers
    sale = await event_on_sale(first, totals=(300,) * TIERS)
    await hold_many(first, sale, HOLDS)
    assert (
        await scalar(first.engine, "SELECT count(*) FROM ticket_types WHERE available = total") == 0
    )
    clock.advance(first.deps.settings.hold_ttl_seconds)

    released = await asyncio.gather(sweep_once(first), sweep_once(second))

    assert sum(released) == HOLDS, released
    engine = first.engine
    assert await scalar(engine, "SELECT count(*) FROM bookings") == HOLDS
    assert await scalar(engine, "SELECT count(*) FROM bookings WHERE status <> 'expired'") == 0
    assert await scalar(engine, NOT_EXPIRED_ONCE) == 0
    assert await sweep_once(first) + await sweep_once(second) == 0
    await assert_all_tickets_back(first)


async def test_buyer_cancelling_during_the_sweep_ends_cancelled_or_expired_once(
    sweepers: tuple[MessageBus, MessageBus], clock: ManualClock
) -> None:
    first, second = sweepers
    sale = await event_on_sale(first, totals=(300,) * TIERS)
    holds = await hold_many(first, sale, 100)
    cancelling = holds[::10]  # a few buyers cancel right as their holds run out
    clock.advance(first.deps.settings.hold_ttl_seconds)

    released, also_released, *cancels = await asyncio.gather(
        sweep_once(first),
        sweep_once(second),
        *(
            second.handle(cmd.CancelBooking(buyer.actor, booking.id))
            for buyer, booking in cancelling
        ),
        return_exceptions=True,
    )

    assert isinstance(released, int) and isinstance(also_released, int), (released, also_released)
    statuses = await booking_statuses(first)
    assert set(statuses.values()) <= {"cancelled", "expired"}
    for (_, booking), outcome in zip(cancelling, cancels, strict=True):
        # The cancel either wins (cancelled) or finds the sweeper got there first (409).
        assert isinstance(outcome, Booking | Conflict), repr(outcome)
        assert statuses[booking.id] == ("cancelled" if isinstance(outcome, Booking) else "expired")
    cancelled = sum(isinstance(outcome, Booking) for outcome in cancels)
    assert list(statuses.values()).count("cancelled") == cancelled
    assert released + also_released + cancelled == len(holds)
    await assert_all_tickets_back(first)
