"""Admission at the door: a ticket of a live booking gets in once, and only once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ticketflow.domain import events as ev
from ticketflow.domain.errors import AlreadyCheckedIn, TicketVoid


@dataclass(frozen=True)
class IssuedTicket:
    """A ticket as the door sees it: found by its code on one event."""

    id: UUID
    event_id: UUID
    booking_id: UUID
    ticket_type_id: UUID
    ticket_type_name: str
    voided_at: datetime | None


@dataclass(frozen=True)
class CheckIn:
    ticket_id: UUID
    event_id: UUID
    booking_id: UUID
    ticket_type_id: UUID
    ticket_type_name: str
    admitted_at: datetime
    admitted_by: UUID


def admit(
    ticket: IssuedTicket, earlier: CheckIn | None, by: UUID, now: datetime
) -> tuple[CheckIn, ev.TicketCheckedIn]:
    """Admit `ticket` unless it is void or was admitted before (`earlier`)."""
    if ticket.voided_at is not None:
        raise TicketVoid(
            f"This ticket was voided at {ticket.voided_at.isoformat()} "
            "(its booking was refunded or cancelled)."
        )
    if earlier is not None:
        raise AlreadyCheckedIn(
            f"This ticket was already admitted at {earlier.admitted_at.isoformat()}.",
            admitted_at=earlier.admitted_at,
        )
    check_in = CheckIn(
        ticket_id=ticket.id,
        event_id=ticket.event_id,
        booking_id=ticket.booking_id,
        ticket_type_id=ticket.ticket_type_id,
        ticket_type_name=ticket.ticket_type_name,
        admitted_at=now,
        admitted_by=by,
    )
    return check_in, ev.TicketCheckedIn(
        stream_id=ticket.id,
        version=1,
        event_id=ticket.event_id,
        booking_id=ticket.booking_id,
        ticket_type_id=ticket.ticket_type_id,
        admitted_at=now,
    )
