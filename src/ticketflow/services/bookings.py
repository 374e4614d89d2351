"""Buyers' use cases: hold tickets, cancel a hold; the sweeper's release of expired holds."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ticketflow.adapters.booking_repository import Released
from ticketflow.adapters.catalog_repository import sum_quantities
from ticketflow.adapters.catalog_snapshots import Snapshot
from ticketflow.adapters.ids import new_id
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import DomainError, InvalidInput, NotEnoughTickets, NotFound
from ticketflow.domain.model import Booking, BookingStatus, EventStatus
from ticketflow.domain.waiting_room import unadmitted_refusal
from ticketflow.services.messagebus import Deps
from ticketflow.services.payments import refund_booking
from ticketflow.services.unit_of_work import UnitOfWork


async def hold_tickets(command: cmd.HoldTickets, uow: UnitOfWork, deps: Deps) -> Booking:
    """Create a pending booking that holds its tickets until `hold_expires_at`.

    Checked first against a recent copy of the catalog (a refusal is confirmed on fresh data);
    a sold-out ticket type is refused without the database. One-line holds then go through the
    batcher (group commit); others take their rows one by one. Either way the tickets are taken
    by a conditional decrement in the transaction that inserts the booking and its event.
    """
    booking, snapshot = await checked_booking(command, deps)
    admitted = snapshot[0].room is not None  # checked_booking checked the admission then
    if await _is_marked(command, deps):
        raise _sold_out(command, snapshot)
    if is_batched(command, deps.settings):
        return await deps.holds.hold(
            booking, uow.meta, uow.idempotency_scope, uow.key_claim, admitted=admitted
        )
    if uow.key_claim is not None:  # only a batch claims keys: holding without it could hold twice
        raise RuntimeError("a key to claim in the hold, on a hold that is not batched")
    async with uow:
        # The buyer's account is locked first, as the batcher does (see holdings); then the
        # share lock keeps the event from being cancelled under this hold. Prices and limits
        # are read again inside the transaction.
        held = await uow.bookings.holdings([command.actor.user_id], command.event_id)
        event = await uow.catalog.get_event(command.event_id, share_lock=True)
        types = await uow.catalog.ticket_types_of(command.event_id)
        booking = _booking_from(command, deps, (event, types) if event else None, booking.id)
        assert event is not None  # _booking_from refuses a missing event
        if refused := unadmitted_refusal(event.room, admitted):
            raise refused
        event.check_buyer_limits(
            [(types[line.ticket_type_id], line.quantity) for line in booking.lines],
            held[command.actor.user_id],
        )
        # Rows are locked in id order so multi-line bookings never deadlock each other.
        for line in sorted(booking.lines, key=lambda line: line.ticket_type_id):
            if not await uow.catalog.take_tickets(line.ticket_type_id, line.quantity):
                raise types[line.ticket_type_id].too_few_left(line.quantity)
        await uow.bookings.add(booking)
        uow.record(ev.TicketsHeld.of(booking))
        await uow.commit()
    return booking


def is_batched(command: cmd.HoldTickets, settings: Settings) -> bool:
    """The one rule of which holds the batcher takes (group commit): a single line, on the
    batched engine. Only those can have their Idempotency-Key claimed in their transaction."""
    return len(command.lines) == 1 and settings.booking_engine == "batched"


async def sold_out_refusal(command: cmd.HoldTickets, deps: Deps) -> NotEnoughTickets | None:
    """The refusal `hold_tickets` would give `command` before any write, because its ticket
    type is marked sold out; None when it would go further (or refuse for another reason).
    The mark is asked first: a hold that goes on is then checked once, by `hold_tickets`."""
    if not await _is_marked(command, deps):
        return None
    try:
        _, snapshot = await checked_booking(command, deps)
    except DomainError:
        return None  # refused for another reason: the route says which
    return _sold_out(command, snapshot)


async def _is_marked(command: cmd.HoldTickets, deps: Deps) -> bool:
    """Only single-line holds are marked (the batcher's)."""
    return len(command.lines) == 1 and await deps.soldout.is_sold_out(command.lines[0][0])


def _sold_out(command: cmd.HoldTickets, snapshot: Snapshot) -> NotEnoughTickets:
    name = snapshot[1][command.lines[0][0]].name
    return NotEnoughTickets(f"'{name}' is sold out.", field="quantity")


async def checked_booking(command: cmd.HoldTickets, deps: Deps) -> tuple[Booking, Snapshot]:
    """The pending booking `command` asks for, checked against a recent copy of the catalog
    (refused only on fresh data, never on a stale copy), and that copy; no ticket taken yet.
    Every booking engine starts here (the benchmark's baseline-lock one too)."""
    if not command.lines:
        raise InvalidInput("A booking needs at least one line.", field="lines")
    ids = [ticket_type_id for ticket_type_id, _ in command.lines]
    if len(set(ids)) != len(ids):
        raise InvalidInput("Name each ticket type once per booking.", field="lines")
    try:
        snapshot = await deps.catalog.get(command.event_id)
        booking = _booking_from(command, deps, snapshot)
    except DomainError:
        snapshot = await deps.catalog.get(command.event_id, fresh=True)
        booking = _booking_from(command, deps, snapshot)
    assert snapshot is not None  # _booking_from refuses a missing event
    # Invariant 9, for both booking doors, from the copy (no query): a room turned on shows
    # here within catalog_snapshot_ttl_seconds on other instances, at once on this one.
    await deps.rooms.check_admission(snapshot[0], command)
    return booking, snapshot


def _booking_from(
    command: cmd.HoldTickets, deps: Deps, snapshot: Snapshot | None, booking_id: UUID | None = None
) -> Booking:
    """The pending booking the command asks for, checked against `snapshot` of the catalog."""
    if snapshot is None or snapshot[0].status is EventStatus.DRAFT:
        raise NotFound("No such event.", field="event_id")
    event, types = snapshot
    unknown = [str(tt_id) for tt_id, _ in command.lines if tt_id not in types]
    if unknown:
        raise NotFound(
            f"No ticket type {', '.join(unknown)} on this event.", field="ticket_type_id"
        )
    return Booking.hold(
        booking_id=booking_id or new_id(),
        user_id=command.actor.user_id,
        event=event,
        wanted=[(types[tt_id], quantity) for tt_id, quantity in command.lines],
        now=deps.clock.now(),
        hold_ttl=timedelta(seconds=deps.settings.hold_ttl_seconds),
    )


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
            await uow.return_tickets(
                sum_quantities((line.ticket_type_id, line.quantity) for line in booking.lines)
            )
            await uow.commit()
            return booking
    return await refund_booking(cmd.RefundBooking(command.actor, command.booking_id), uow, deps)


async def return_released(uow: UnitOfWork, released: list[Released], *, reason: str) -> None:
    """Give the tickets of bookings that just left `pending` back to sale, and record why."""
    await uow.return_tickets(
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
