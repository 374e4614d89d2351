"""Buyers' use cases: hold tickets, cancel a hold; the sweeper's release of expired holds."""

from __future__ import annotations

from datetime import timedelta

from ticketflow.adapters.booking_repository import Released
from ticketflow.adapters.catalog_repository import sum_quantities
from ticketflow.adapters.ids import new_id
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import InvalidInput, NotEnoughTickets, NotFound
from ticketflow.domain.model import Booking, BookingStatus, EventStatus
from ticketflow.services.messagebus import Deps
from ticketflow.services.payments import refund_booking
from ticketflow.services.unit_of_work import UnitOfWork


async def hold_tickets(command: cmd.HoldTickets, uow: UnitOfWork, deps: Deps) -> Booking:
    """Create a pending booking. The conditional decrement per line, in the same transaction as
    the booking and its event, is what keeps invariant 1; no lock is taken beforehand."""
    if not command.lines:
        raise InvalidInput("A booking needs at least one line.", field="lines")
    ids = [ticket_type_id for ticket_type_id, _ in command.lines]
    if len(set(ids)) != len(ids):
        raise InvalidInput("Name each ticket type once per booking.", field="lines")
    async with uow:
        event = await uow.catalog.get_event(command.event_id)
        if event is None or event.status is EventStatus.DRAFT:
            raise NotFound("No such event.", field="event_id")
        types = await uow.catalog.ticket_types_of(event.id)
        unknown = [str(tt_id) for tt_id in ids if tt_id not in types]
        if unknown:
            raise NotFound(
                f"No ticket type {', '.join(unknown)} on this event.", field="ticket_type_id"
            )
        booking, held = Booking.hold(
            booking_id=new_id(),
            user_id=command.actor.user_id,
            event=event,
            wanted=[(types[tt_id], quantity) for tt_id, quantity in command.lines],
            now=uow.clock.now(),
            hold_ttl=timedelta(seconds=deps.settings.hold_ttl_seconds),
        )
        # Rows are locked in id order so multi-line bookings never deadlock each other.
        for line in sorted(booking.lines, key=lambda line: line.ticket_type_id):
            if not await uow.catalog.take_tickets(line.ticket_type_id, line.quantity):
                name = types[line.ticket_type_id].name
                raise NotEnoughTickets(
                    f"Not enough '{name}' tickets left for {line.quantity}.", field="quantity"
                )
        await uow.bookings.add(booking)
        uow.record(held)
        await uow.commit()
    return booking


async def cancel_booking(command: cmd.CancelBooking, uow: UnitOfWork, deps: Deps) -> Booking:
    """Cancel a hold (its tickets return); cancelling a paid booking refunds it instead."""
    async with uow:
        booking = await uow.bookings.get(command.booking_id)
        event = await uow.catalog.get_event(booking.event_id) if booking else None
        if (
            booking is None
            or event is None
            or not command.actor.may_see_booking(booking.user_id, event.organizer_id)
        ):
            raise NotFound("No such booking.")  # 404, not 403: ids of others don't leak
        if booking.status is not BookingStatus.CONFIRMED:
            uow.record(booking.cancel("cancelled_by_user"))
            await uow.bookings.save_status(booking, uow.clock.now())
            await uow.catalog.return_tickets(
                sum_quantities((line.ticket_type_id, line.quantity) for line in booking.lines)
            )
            await uow.commit()
            return booking
    return await refund_booking(cmd.RefundBooking(command.actor, command.booking_id), uow, deps)


async def return_released(uow: UnitOfWork, released: list[Released], *, reason: str) -> None:
    """Give the tickets of bookings that just left `pending` back to sale, and record why."""
    await uow.catalog.return_tickets(
        sum_quantities(
            (line.ticket_type_id, line.quantity) for _, _, lines in released for line in lines
        )
    )
    for booking_id, version, lines in released:
        data = ev.lines_data(lines)
        uow.record(
            ev.HoldExpired(stream_id=booking_id, version=version, lines=data)
            if reason == "expired"
            else ev.BookingCancelled(
                stream_id=booking_id, version=version, reason=reason, lines=data
            )
        )


async def release_expired_holds(
    command: cmd.ReleaseExpiredHolds, uow: UnitOfWork, deps: Deps
) -> int:
    """One sweep: expire up to `batch_size` due holds; safe with any number of sweepers."""
    async with uow:
        released = await uow.bookings.expire_due(uow.clock.now(), command.batch_size)
        await return_released(uow, released, reason="expired")
        await uow.commit()
    return len(released)
