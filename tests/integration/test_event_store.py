"""Every state change appends its domain event in the same transaction; refusals append none."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ticketflow.adapters.tables import bookings, domain_events
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import NotEnoughTickets
from ticketflow.services.messagebus import MessageBus, current_request_id

from ..builders import account, event_on_sale


async def _events(bus: MessageBus) -> list[tuple[str, str, int, object, object]]:
    async with bus.engine.connect() as connection:
        rows = await connection.execute(
            select(
                domain_events.c.type,
                domain_events.c.stream_type,
                domain_events.c.version,
                domain_events.c.actor_id,
                domain_events.c.request_id,
            ).order_by(domain_events.c.seq)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_each_change_records_type_stream_version_actor_and_request(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    token = current_request_id.set("req-123")
    try:
        booking = await bus.handle(
            cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),))
        )
        await bus.handle(cmd.CancelBooking(buyer.actor, booking.id))
    finally:
        current_request_id.reset(token)
    recorded = await _events(bus)
    assert [(t, s, v) for t, s, v, _, _ in recorded[-2:]] == [
        ("booking.held", "booking", 1),
        ("booking.cancelled", "booking", 2),
    ]
    assert {(actor, request) for _, _, _, actor, request in recorded[-2:]} == {
        (buyer.actor.user_id, "req-123")
    }
    assert [t for t, *_ in recorded if t.startswith("event.")] == [
        "event.created",
        "event.published",
    ]


async def test_refused_booking_writes_neither_booking_nor_event(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(1, 5))
    buyer = await account(bus)
    before = await _events(bus)
    lines = ((sale.ticket_types[1].id, 2), (sale.ticket_types[0].id, 2))
    with pytest.raises(NotEnoughTickets):
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, lines))
    assert await _events(bus) == before
    async with bus.engine.connect() as connection:
        assert (await connection.execute(select(bookings.c.id))).all() == []
    # The first line's decrement was rolled back with the rest.
    event = await bus.handle(cmd.UpdateTicketType(sale.organizer.actor, sale.ticket_types[1].id))
    assert event.available == 5
