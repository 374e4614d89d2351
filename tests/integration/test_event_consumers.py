"""Consumers without Redis (the embedded mode): events straight from the event store, in seq order,
each applied once per consumer, resuming after a restart from the consumer's stored position."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters import event_store
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.tables import consumer_inbox
from ticketflow.domain import commands as cmd
from ticketflow.services.event_consumers import (
    EventConsumer,
    EventStoreReader,
    consume_once,
    event_source_for,
)
from ticketflow.services.messagebus import MessageBus

from ..builders import account, event_on_sale

Identity = tuple[str, UUID, int]


async def _all_events(bus: MessageBus) -> list[Identity]:
    async with bus.engine.connect() as connection:
        events = await event_store.read_after(connection, 0, 1_000_000)
    return [(e.stream_type, e.stream_id, e.version) for e in events]


async def test_an_embedded_consumer_applies_each_stored_event_once_in_order(
    bus: MessageBus,
) -> None:
    seen: list[Identity] = []

    async def handler(_: AsyncConnection, event: StoredEvent) -> None:
        seen.append((event.stream_type, event.stream_id, event.version))

    async def run_to_the_end(reader: EventStoreReader) -> None:
        while await consume_once(reader, consumer, count=4):
            pass

    consumer = EventConsumer(bus.engine, bus.deps.clock, "mailer", handler)
    source = await event_source_for(bus, "mailer")  # no Redis configured: the store itself
    assert isinstance(source, EventStoreReader)
    sale = await event_on_sale(bus, totals=(5,))
    await run_to_the_end(source)
    assert seen == await _all_events(bus)

    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),)))
    restarted = EventStoreReader(bus.engine, bus.deps.clock, "mailer")
    await run_to_the_end(restarted)  # only what is new since its stored position
    assert seen == await _all_events(bus)

    lost = EventStoreReader(bus.engine, bus.deps.clock, "another-name-same-inbox")
    for delivery in await lost.read(100):  # every event again, as if its position were lost
        assert not await consumer.apply(delivery.event)
    assert seen == await _all_events(bus)
    async with bus.engine.connect() as connection:
        inbox = await connection.scalar(select(func.count()).select_from(consumer_inbox))
    assert inbox == len(seen)


async def test_a_consumer_with_outside_effects_holds_no_write_lock_while_it_works(
    bus: MessageBus,
) -> None:
    """A mail server that takes its time must not stop bookings: while the handler works (here:
    it books, as a slow SMTP exchange would let buyers do), no write transaction is open, which
    on SQLite would lock the whole database. Each event is still applied once."""
    sale = await event_on_sale(bus, totals=(50,))
    buyer = await account(bus)
    handled: list[Identity] = []

    async def handler(_: AsyncConnection, event: StoredEvent) -> None:
        lines = ((sale.ticket_types[0].id, 1),)
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, lines))  # a write, now
        handled.append((event.stream_type, event.stream_id, event.version))

    consumer = EventConsumer(bus.engine, bus.deps.clock, "slow-mail", handler, effects_outside=True)
    events = await event_store_events(bus)
    for event in events:
        assert await consumer.apply(event)
    for event in events:
        assert not await consumer.apply(event)  # recorded: never handled twice
    assert handled == [(e.stream_type, e.stream_id, e.version) for e in events]


async def event_store_events(bus: MessageBus) -> list[StoredEvent]:
    async with bus.engine.connect() as connection:
        return await event_store.read_after(connection, 0, 1_000_000)


async def test_events_a_consumer_has_no_interest_in_cost_no_write(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),)))
    handled: list[str] = []

    async def handler(_: AsyncConnection, event: StoredEvent) -> None:
        handled.append(event.type)

    async def only_holds(event: StoredEvent) -> bool:
        return event.type == "booking.held"

    consumer = EventConsumer(bus.engine, bus.deps.clock, "holds", handler, interested=only_holds)
    events = await event_store_events(bus)
    applied = [await consumer.apply(event) for event in events]
    assert handled == ["booking.held"]
    assert applied == [event.type == "booking.held" for event in events]
    async with bus.engine.connect() as connection:
        inbox = await connection.scalar(select(func.count()).select_from(consumer_inbox))
    assert inbox == 1  # the others were looked at, not written down
