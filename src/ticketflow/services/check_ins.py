"""Check-in at the door: the event's organizer (or an admin) scans a ticket code, once."""

from __future__ import annotations

from ticketflow.domain import commands as cmd
from ticketflow.domain.check_in import CheckIn, admit
from ticketflow.domain.errors import InvalidTransition, NotFound
from ticketflow.domain.model import EventStatus
from ticketflow.services.catalog import managed_event
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork


async def check_in_ticket(command: cmd.CheckInTicket, uow: UnitOfWork, deps: Deps) -> CheckIn:
    """Admit the ticket with the command's code. The check-in's primary key is the ticket, so
    of two scans at once exactly one is admitted; the other learns when (409)."""
    async with uow:
        event = await managed_event(uow, command.actor, command.event_id)
        if event.status is not EventStatus.PUBLISHED:
            raise InvalidTransition(f"The event is {event.status}; it admits nobody.")
        ticket = await uow.check_ins.ticket_by_code(event.id, command.code)
        if ticket is None:
            raise NotFound("No ticket of this event has that code.")
        now = uow.clock.now()
        check_in, checked_in = admit(
            ticket, await uow.check_ins.of_ticket(ticket), command.actor.user_id, now
        )
        if not await uow.check_ins.add(check_in):
            # Admitted between our read and our write (the ticket's lock makes this rare): the
            # same refusal as a scan that came second.
            earlier = await uow.check_ins.of_ticket(ticket)
            assert earlier is not None
            admit(ticket, earlier, command.actor.user_id, now)  # raises AlreadyCheckedIn
        uow.record(checked_in)
        await uow.commit()
    return check_in
