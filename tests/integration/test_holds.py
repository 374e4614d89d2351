"""Holding tickets: the conditional decrement, sold out, cancel and expiry return tickets once."""

from __future__ import annotations

import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import InvalidTransition, NotEnoughTickets
from ticketflow.domain.model import BookingStatus
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.sweeper import sweep_once

from ..builders import account, event_on_sale
from ..invariants import assert_invariants


async def test_hold_takes_tickets_until_sold_out(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(3,))
    buyer = await account(bus)
    tier = sale.ticket_types[0]
    booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 2),)))
    assert booking.status is BookingStatus.PENDING
    with pytest.raises(NotEnoughTickets):
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 2),)))
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 1),)))
    await assert_invariants(bus.engine)


async def test_expired_hold_returns_tickets_once(bus: MessageBus, clock: ManualClock) -> None:
    sale = await event_on_sale(bus, totals=(2,))
    buyer = await account(bus)
    tier = sale.ticket_types[0]
    booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 2),)))
    assert await sweep_once(bus) == 0
    clock.advance(bus.deps.settings.hold_ttl_seconds)
    assert await sweep_once(bus) == 1
    assert await sweep_once(bus) == 0
    with pytest.raises(InvalidTransition):
        await bus.handle(cmd.CancelBooking(buyer.actor, booking.id))
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 2),)))
    await assert_invariants(bus.engine)
