"""The allocation rules of a batch of holds (domain/allocation.py), without a database: who gets
tickets in arrival order, and when an allocation made from an unlocked read still stands on the
locked row."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest

from ticketflow.domain.allocation import Allocation, allocate, allocation_stands
from ticketflow.domain.errors import (
    BuyerLimitReached,
    InvalidInput,
    NotEnoughTickets,
    SalesClosed,
)
from ticketflow.domain.model import Booking, Event, EventStatus, TicketType

from .test_model import NOW, a_ticket_type, an_event, hold

EVENT = an_event()
TYPE = a_ticket_type(EVENT, available=10, max_per_booking=10)
READ = (EVENT, TYPE)


def _holds(
    event: Event, ticket_type: TicketType, *quantities: int, buyer: UUID | None = None
) -> list[Booking]:
    """One-line holds checked against an older copy of the type (the price was 1 then)."""
    copy = replace(ticket_type, price_minor=1, max_per_booking=100)
    holds = [hold(event, [(copy, quantity)]) for quantity in quantities]
    return [replace(h, user_id=buyer) if buyer else h for h in holds]


def _kinds(allocation: Allocation) -> list[str]:
    return [
        f"held {o.lines[0].quantity}" if isinstance(o, Booking) else type(o).__name__
        for o in allocation.outcomes
    ]


def test_holds_are_served_in_arrival_order_while_tickets_last() -> None:
    allocation = allocate(EVENT, TYPE, _holds(EVENT, TYPE, 4, 5, 2, 1), NOW)
    assert _kinds(allocation) == ["held 4", "held 5", "NotEnoughTickets", "held 1"]
    assert (allocation.left, allocation.wanted) == (0, 10)
    assert allocation.refused_for_too_few
    refused = allocation.outcomes[2]
    assert isinstance(refused, NotEnoughTickets) and refused.field == "quantity"


def test_a_held_booking_is_priced_from_the_row_read_not_the_copy_it_was_checked_on() -> None:
    [booking] = allocate(EVENT, TYPE, _holds(EVENT, TYPE, 3), NOW).held
    assert booking.lines[0].unit_price_minor == TYPE.price_minor == 2500
    assert (booking.total_minor, booking.currency) == (7500, "EUR")


def test_a_quantity_over_the_limit_is_refused_and_takes_nothing() -> None:
    limited = replace(TYPE, max_per_booking=2)
    allocation = allocate(EVENT, limited, _holds(EVENT, limited, 3, 2), NOW)
    assert _kinds(allocation) == ["InvalidInput", "held 2"]
    assert isinstance(allocation.outcomes[0], InvalidInput)
    assert allocation.left == 8


def test_closed_sales_refuse_every_hold_and_count_nothing() -> None:
    over = replace(EVENT, sales_end=NOW)  # closed after the holds were checked
    allocation = allocate(over, TYPE, _holds(EVENT, TYPE, 1, 1), NOW)
    assert all(isinstance(o, SalesClosed) for o in allocation.outcomes)
    assert allocation.left is None


def test_a_buyers_cap_counts_what_they_had_and_their_earlier_holds_in_the_batch() -> None:
    capped = replace(EVENT, max_tickets_per_buyer=5)
    buyer, other = uuid.uuid4(), uuid.uuid4()
    holds = _holds(capped, TYPE, 2, 2, 1, buyer=buyer) + _holds(capped, TYPE, 4, buyer=other)
    allocation = allocate(capped, TYPE, holds, NOW, {buyer: {TYPE.id: 1}, other: {}})
    assert _kinds(allocation) == ["held 2", "held 2", "BuyerLimitReached", "held 4"]
    refused = allocation.outcomes[2]
    assert isinstance(refused, BuyerLimitReached) and refused.remaining == 0


def test_a_capped_type_needs_to_know_what_buyers_had() -> None:
    capped = replace(TYPE, max_per_buyer=2)
    with pytest.raises(ValueError, match="what each buyer had"):
        allocate(EVENT, capped, _holds(EVENT, capped, 1), NOW)


def test_others_selling_meanwhile_is_fine_while_enough_is_left() -> None:
    four = allocate(EVENT, TYPE, _holds(EVENT, TYPE, 4), NOW)
    assert allocation_stands(READ, (EVENT, replace(TYPE, available=4)), four, NOW)
    assert not allocation_stands(READ, (EVENT, replace(TYPE, available=3)), four, NOW)


def test_a_refusal_for_too_few_tickets_needs_the_exact_count_it_was_judged_on() -> None:
    short = allocate(EVENT, TYPE, _holds(EVENT, TYPE, 4, 7), NOW)
    assert short.refused_for_too_few
    assert allocation_stands(READ, READ, short, NOW)
    assert not allocation_stands(READ, (EVENT, replace(TYPE, available=11)), short, NOW)


def test_any_other_change_to_the_ticket_type_or_its_event_means_allocating_again() -> None:
    one = allocate(EVENT, TYPE, _holds(EVENT, TYPE, 1), NOW)
    for changed in (
        {"price_minor": 9900},
        {"max_per_booking": 1},
        {"max_per_buyer": 3},
        {"version": 2},
    ):
        assert not allocation_stands(READ, (EVENT, replace(TYPE, **changed)), one, NOW)  # type: ignore[arg-type]
    cancelled = replace(EVENT, status=EventStatus.CANCELLED, version=2)
    assert not allocation_stands(READ, (cancelled, TYPE), one, NOW)
    assert not allocation_stands(READ, (replace(EVENT, max_tickets_per_buyer=2), TYPE), one, NOW)
    assert not allocation_stands(READ, None, one, NOW)
    assert not allocation_stands(None, READ, one, NOW)


def test_sales_that_closed_meanwhile_mean_allocating_again() -> None:
    closing = an_event(sales_end=NOW + timedelta(seconds=1))
    ticket_type = a_ticket_type(closing)
    read = (closing, ticket_type)
    one = allocate(closing, ticket_type, _holds(closing, ticket_type, 1), NOW)
    assert allocation_stands(read, read, one, NOW)
    assert not allocation_stands(read, read, one, NOW + timedelta(seconds=1))
