"""Tickets found by their code at the door, and their check-ins."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import bookings, check_ins, ticket_types, tickets
from ticketflow.domain.check_in import CheckIn, IssuedTicket


class CheckInRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def ticket_by_code(self, event_id: UUID, code: str) -> IssuedTicket | None:
        """The event's ticket with `code`, locked until this transaction ends: a refund voiding
        it and a scan admitting it take turns (SQLite's write transaction serializes anyway)."""
        row = (
            await self._connection.execute(
                select(
                    tickets.c.id,
                    tickets.c.booking_id,
                    tickets.c.ticket_type_id,
                    ticket_types.c.name.label("ticket_type_name"),
                    tickets.c.voided_at,
                    bookings.c.event_id,
                )
                .join(bookings, bookings.c.id == tickets.c.booking_id)
                .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
                .where(tickets.c.code == code, bookings.c.event_id == event_id)
                .with_for_update(of=tickets)
            )
        ).one_or_none()
        return IssuedTicket(**row._mapping) if row else None

    async def of_ticket(self, ticket: IssuedTicket) -> CheckIn | None:
        row = (
            await self._connection.execute(
                select(check_ins).where(check_ins.c.ticket_id == ticket.id)
            )
        ).one_or_none()
        if row is None:
            return None
        return CheckIn(
            ticket_id=ticket.id,
            event_id=row.event_id,
            booking_id=ticket.booking_id,
            ticket_type_id=ticket.ticket_type_id,
            ticket_type_name=ticket.ticket_type_name,
            admitted_at=row.admitted_at,
            admitted_by=row.admitted_by,
        )

    async def any_of_booking(self, booking_id: UUID) -> bool:
        """Whether a ticket of the booking was admitted (as of this statement)."""
        found = await self._connection.scalar(
            select(check_ins.c.ticket_id)
            .join(tickets, tickets.c.id == check_ins.c.ticket_id)
            .where(tickets.c.booking_id == booking_id)
            .limit(1)
        )
        return found is not None

    async def add(self, check_in: CheckIn) -> bool:
        """Record the admission; False if the ticket was admitted meanwhile (the key held)."""
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    insert(check_ins).values(
                        ticket_id=check_in.ticket_id,
                        event_id=check_in.event_id,
                        admitted_at=check_in.admitted_at,
                        admitted_by=check_in.admitted_by,
                    )
                )
        except IntegrityError:
            return False
        return True
