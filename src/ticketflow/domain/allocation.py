"""Allocation: which holds of one ticket type get their tickets, in arrival order, and whether
an allocation made from one read of the catalog still stands on a later, locked one.

Pure rules: the hold batcher (services/hold_batcher.py) reads the rows, asks these functions and
writes what they decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from ticketflow.domain.errors import DomainError, NotEnoughTickets
from ticketflow.domain.model import Booking, Event, TicketType


@dataclass(frozen=True)
class Allocation:
    """Each hold's outcome, in the order asked: the booking priced from the ticket type as it
    is now, or why it was refused; and the tickets left after the held ones (None: the type
    can't be sold now, so nothing was counted)."""

    outcomes: list[Booking | DomainError]
    left: int | None

    @property
    def held(self) -> list[Booking]:
        return [outcome for outcome in self.outcomes if isinstance(outcome, Booking)]

    @property
    def wanted(self) -> int:
        """The tickets the held bookings take."""
        return sum(booking.lines[0].quantity for booking in self.held)

    @property
    def refused_for_too_few(self) -> bool:
        """Whether a hold was refused for too few tickets left: only right if `available`
        was (see `allocation_stands`)."""
        return any(isinstance(outcome, NotEnoughTickets) for outcome in self.outcomes)


def caps_buyers(event: Event, ticket_type: TicketType) -> bool:
    """Whether holds of this type must know what each buyer has already (`had` below)."""
    return event.caps_buyers or ticket_type.max_per_buyer is not None


def allocate(
    event: Event,
    ticket_type: TicketType,
    holds: Sequence[Booking],
    now: datetime,
    had: Mapping[UUID, Mapping[UUID, int]] | None = None,
) -> Allocation:
    """Allocate `holds` (pending bookings of one line of `ticket_type`, in arrival order)
    from what is `available`: the sale must be on, each quantity allowed, each buyer within
    their caps counting what they `had` (tickets per ticket type of this event; needed when
    `caps_buyers`) and the holds allocated before theirs, and enough tickets left."""
    try:
        event.check_on_sale(now)
    except DomainError as closed:
        return Allocation([closed] * len(holds), None)
    counted = {buyer: dict(per_type) for buyer, per_type in (had or {}).items()}
    capped = caps_buyers(event, ticket_type)
    if capped and had is None:
        raise ValueError("holds of a capped ticket type need what each buyer had")
    left = ticket_type.available
    outcomes: list[Booking | DomainError] = []
    for booking in holds:
        quantity = booking.lines[0].quantity
        buyer = counted.setdefault(booking.user_id, {})
        try:
            ticket_type.check_quantity(quantity)
            if capped:
                event.check_buyer_limits([(ticket_type, quantity)], buyer)
            if quantity > left:
                raise ticket_type.too_few_left(quantity)
        except DomainError as refused:
            outcomes.append(refused)
            continue
        left -= quantity
        buyer[ticket_type.id] = buyer.get(ticket_type.id, 0) + quantity
        outcomes.append(booking.priced(ticket_type))
    return Allocation(outcomes, left)


def allocation_stands(
    read: tuple[Event, TicketType] | None,
    fresh: tuple[Event, TicketType] | None,
    allocation: Allocation,
    now: datetime,
) -> bool:
    """Whether `allocation`, made from `read`, stands on `fresh`, the locked truth: the event
    and the ticket type unchanged but for `available`, still on sale, and enough tickets left
    (exactly as many as read, if a hold was refused for too few)."""
    if read is None or fresh is None:
        return False
    (event, ticket_type), (fresh_event, fresh_type) = read, fresh
    if fresh_event != event or replace(fresh_type, available=ticket_type.available) != ticket_type:
        return False
    try:
        fresh_event.check_on_sale(now)
    except DomainError:
        return False
    if allocation.refused_for_too_few:
        return fresh_type.available == ticket_type.available
    return fresh_type.available >= allocation.wanted
