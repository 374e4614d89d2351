"""Organizers' use cases: events and their ticket types."""

from __future__ import annotations

import contextlib
from functools import partial
from uuid import UUID

from ticketflow.adapters.ids import new_id
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import NotFound, PermissionDenied, ServiceUnavailable
from ticketflow.domain.model import Actor, Event, EventStatus, Role, TicketType
from ticketflow.domain.waiting_room import WaitingRoom
from ticketflow.services.bookings import return_released
from ticketflow.services.messagebus import Deps
from ticketflow.services.payments import complete_refund
from ticketflow.services.unit_of_work import UnitOfWork


def require_organizer(actor: Actor, what: str = "manage events") -> None:
    if actor.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied(f"Only managers and admins {what}.")


def forget_views(uow: UnitOfWork, deps: Deps, event_id: UUID) -> None:
    """Cached catalog reads of this event, and this process's copy for the booking path, go
    stale once this unit of work commits."""
    uow.after_commit(partial(deps.views.forget_event, event_id))
    uow.after_commit(partial(deps.catalog.forget, event_id))


async def managed_event(uow: UnitOfWork, actor: Actor, event_id: UUID) -> Event:
    """The event, if `actor` may change it: 404 if they can't even see it, 403 if only see."""
    require_organizer(actor)
    event = await uow.catalog.get_event(event_id)
    if event is None or (
        event.status is EventStatus.DRAFT and not actor.may_manage(event.organizer_id)
    ):
        raise NotFound("No such event.")
    if not actor.may_manage(event.organizer_id):
        raise PermissionDenied("Only the event's organizer or an admin can change it.")
    return event


async def create_event(command: cmd.CreateEvent, uow: UnitOfWork, deps: Deps) -> Event:
    require_organizer(command.actor)
    event = Event(
        id=new_id(),
        organizer_id=command.actor.user_id,
        title=command.title,
        description=command.description,
        venue=command.venue,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        sales_start=command.sales_start,
        sales_end=command.sales_end,
        max_tickets_per_buyer=command.max_tickets_per_buyer,
        refund_deadline=command.refund_deadline,
        waiting_room=WaitingRoom.of(command.waiting_room) if command.waiting_room else None,
    )
    event.check_schedule()
    async with uow:
        await uow.catalog.add_event(event, uow.clock.now())
        uow.record(
            ev.EventCreated(
                stream_id=event.id,
                version=event.version,
                organizer_id=event.organizer_id,
                title=event.title,
                venue=event.venue,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                sales_start=event.sales_start,
                sales_end=event.sales_end,
                max_tickets_per_buyer=event.max_tickets_per_buyer,
                refund_deadline=event.refund_deadline,
                waiting_room=event.waiting_room.data() if event.waiting_room else None,
            )
        )
        uow.after_commit(partial(deps.rooms.open, event))
        await uow.commit()
    return event


async def update_event(command: cmd.UpdateEvent, uow: UnitOfWork, deps: Deps) -> Event:
    async with uow:
        event = await managed_event(uow, command.actor, command.event_id)
        if command.changes:
            uow.record(event.update(command.changes))
            await uow.catalog.save_event(event)
            if command.changes.keys() & {"waiting_room", "sales_start"}:  # its line's opening
                uow.after_commit(partial(deps.rooms.open, event))
        forget_views(uow, deps, event.id)
        await uow.commit()
    return event


async def publish_event(command: cmd.PublishEvent, uow: UnitOfWork, deps: Deps) -> Event:
    async with uow:
        event = await managed_event(uow, command.actor, command.event_id)
        uow.record(event.publish())
        await uow.catalog.save_event(event)
        forget_views(uow, deps, event.id)
        await uow.commit()
    return event


async def cancel_event(command: cmd.CancelEvent, uow: UnitOfWork, deps: Deps) -> Event:
    """Stop sales, release every pending hold and request a refund of every paid booking, in
    one transaction; the refunds are then sent (whatever fails here, the reconciler finishes)."""
    async with uow:
        event = await managed_event(uow, command.actor, command.event_id)
        uow.record(event.cancel())
        await uow.catalog.save_event(event)
        now = uow.clock.now()
        await return_released(
            uow, await uow.bookings.cancel_pending_of_event(event.id, now), reason="event_cancelled"
        )
        paid = await uow.payments.paid_for_event(event.id)
        for payment in paid:
            version = payment.version
            uow.record(payment.request_refund(now, reason="event_cancelled"))
            await uow.payments.save(payment, version, now)
        forget_views(uow, deps, event.id)
        # Sold-out marks must not outlive the sale: a buyer is told the sale is over, not that
        # it sold out (the marks only ever mean "sold out on a sale that is on").
        uow.back_on_sale((await uow.catalog.ticket_types_of(event.id)).keys())
        await uow.commit()
    for payment in paid:
        with contextlib.suppress(ServiceUnavailable):
            await complete_refund(uow, deps, payment.id)
    return event


async def add_ticket_type(command: cmd.AddTicketType, uow: UnitOfWork, deps: Deps) -> TicketType:
    ticket_type = TicketType(
        id=new_id(),
        event_id=command.event_id,
        name=command.name,
        price_minor=command.price_minor,
        currency=command.currency,
        total=command.total,
        available=command.total,
        max_per_booking=command.max_per_booking,
        max_per_buyer=command.max_per_buyer,
    )
    ticket_type.check_rules()
    async with uow:
        event = await managed_event(uow, command.actor, command.event_id)
        event.accepts_ticket_types()
        await uow.catalog.add_ticket_type(ticket_type, uow.clock.now())
        uow.record(
            ev.TicketTypeAdded(
                stream_id=ticket_type.id,
                version=ticket_type.version,
                event_id=event.id,
                name=ticket_type.name,
                price_minor=ticket_type.price_minor,
                currency=ticket_type.currency,
                total=ticket_type.total,
                max_per_booking=ticket_type.max_per_booking,
                max_per_buyer=ticket_type.max_per_buyer,
            )
        )
        forget_views(uow, deps, event.id)
        await uow.commit()
    return ticket_type


async def update_ticket_type(
    command: cmd.UpdateTicketType, uow: UnitOfWork, deps: Deps
) -> TicketType:
    async with uow:
        ticket_type = await uow.catalog.get_ticket_type(command.ticket_type_id)
        if ticket_type is None:
            require_organizer(command.actor)
            raise NotFound("No such ticket type.")
        event = await managed_event(uow, command.actor, ticket_type.event_id)
        event.accepts_ticket_types()
        if command.changes:
            old_total = ticket_type.total
            uow.record(ticket_type.update(command.changes))
            await uow.catalog.save_ticket_type(ticket_type, ticket_type.total - old_total)
            if ticket_type.total > old_total:
                uow.back_on_sale([ticket_type.id])
        forget_views(uow, deps, ticket_type.event_id)
        await uow.commit()
    return ticket_type
