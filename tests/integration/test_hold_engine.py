"""The booking hot path: group commit, sold-out marks, and re-checks under the row lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from ticketflow.adapters.clock import ManualClock
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import NotEnoughTickets, SalesClosed
from ticketflow.services.messagebus import MessageBus

from ..builders import account, event_on_sale
from ..conftest import FAST_PASSWORDS, wipe
from ..invariants import assert_invariants


async def test_concurrent_holds_share_transactions_and_never_oversell(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(50,))
    tier = sale.ticket_types[0].id
    buyers = [await account(bus) for _ in range(20)]
    attempts = [
        bus.handle(cmd.HoldTickets(buyers[n % 20].actor, sale.event.id, ((tier, 1),)))
        for n in range(200)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    held = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, NotEnoughTickets)]
    assert (len(held), len(refused)) == (50, 150)
    batcher = bus.deps.holds
    assert batcher.holds_committed == 50
    assert batcher.batches_committed < 50  # group commit happened
    await assert_invariants(bus.engine)


async def test_a_hold_on_a_cancelled_event_is_refused_even_from_a_stale_copy(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    tier = sale.ticket_types[0].id
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))  # caches it
    await bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    with pytest.raises(SalesClosed):
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await assert_invariants(bus.engine)


async def test_a_hold_pays_the_price_of_the_locked_row_not_of_a_stale_copy(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    tier = sale.ticket_types[0].id
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))  # caches it
    await bus.handle(cmd.UpdateTicketType(sale.organizer.actor, tier, {"price_minor": 777}))
    booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 2),)))
    assert booking.total_minor == 2 * 777


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
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    try:
        yield buses[0], buses[1]
    finally:
        await redis.aclose()
        for bus in buses:
            await bus.engine.dispose()
            if bus.deps.redis is not None:
                await bus.deps.redis.aclose()


async def test_sold_out_mark_is_shared_and_cleared_when_a_ticket_returns(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    first, second = two_processes
    sale = await event_on_sale(first, totals=(1,))
    tier = sale.ticket_types[0].id
    buyer = await account(first)
    booking = await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    # Behind the app's back one more ticket appears: only the database would know.
    async with first.engine.begin() as connection:
        await connection.execute(
            text("UPDATE ticket_types SET total = 2, available = 1 WHERE id = :id"), {"id": tier}
        )
    with pytest.raises(NotEnoughTickets, match="sold out"):  # refused from the shared mark
        await second.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await second.handle(cmd.CancelBooking(buyer.actor, booking.id))  # clears the mark
    await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await assert_invariants(first.engine)


async def test_flushed_redis_sells_nothing_twice(
    two_processes: tuple[MessageBus, MessageBus], redis_url: str
) -> None:
    first, second = two_processes
    sale = await event_on_sale(first, totals=(30,))
    tier = sale.ticket_types[0].id
    buyer = await account(first)
    redis = Redis.from_url(redis_url)
    attempts = []
    for n in range(120):
        bus = first if n % 2 else second
        attempts.append(bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),))))
        if n == 60:
            attempts.append(redis.flushall())
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    await redis.aclose()
    held = [o for o in outcomes if not isinstance(o, BaseException | bool)]
    assert len(held) == 30
    assert all(isinstance(o, NotEnoughTickets) for o in outcomes if isinstance(o, BaseException))
    await assert_invariants(first.engine)
