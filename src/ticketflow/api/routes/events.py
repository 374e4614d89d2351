"""Events and ticket types: public browsing, organizers' management."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, OptionalActor, ReadConnection
from ticketflow.api.schemas import (
    EventIn,
    EventOut,
    EventPage,
    EventPatch,
    SalesSummaryOut,
    TicketTypeIn,
    TicketTypeOut,
    TicketTypePatch,
)
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import AuthenticationFailed
from ticketflow.services import queries, read_models
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(tags=["events"])


@router.get(
    "/events",
    summary="Published events by start time (or your own with mine=true)",
    description="Public pages are cached (header `X-Cache: hit|miss`); availability lags by at "
    "most TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS.",
)
async def list_events(
    bus: Bus,
    response: Response,
    actor: OptionalActor,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    mine: Annotated[bool, Query(description="Organizers: all your events, drafts too")] = False,
) -> EventPage:
    if not mine:
        page, hit = await bus.deps.views.published(cursor, limit)
        response.headers["X-Cache"] = "hit" if hit else "miss"
        return EventPage.model_validate(page, from_attributes=True)
    if actor is None:
        raise AuthenticationFailed("Send a bearer token to list your own events.")
    async with bus.engine.connect() as db:
        page = await queries.list_events(db, cursor=cursor, limit=limit, organized_by=actor)
    return EventPage.model_validate(page, from_attributes=True)


@router.post("/events", status_code=201, summary="Create a draft event (managers)")
async def create_event(
    body: EventIn, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> EventOut:
    event = await bus.handle(cmd.CreateEvent(actor=actor, **body.model_dump()))
    return EventOut.model_validate(await queries.event_detail(db, event.id, actor))


@router.get(
    "/events/{event_id}",
    summary="One event with live availability per ticket type",
    description="Cached (header `X-Cache: hit|miss`); availability lags by at most "
    "TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS.",
)
async def get_event(event_id: UUID, bus: Bus, response: Response, actor: OptionalActor) -> EventOut:
    event, hit = await bus.deps.views.event(event_id, actor)
    response.headers["X-Cache"] = "hit" if hit else "miss"
    return EventOut.model_validate(event)


@router.get(
    "/events/{event_id}/sales",
    summary="Sales summary per ticket type (the event's organizer, admins)",
    description="Sold, held and revenue per ticket type, from the sales read model.",
)
async def get_sales(event_id: UUID, actor: CurrentActor, db: ReadConnection) -> SalesSummaryOut:
    return SalesSummaryOut.model_validate(await read_models.sales_summary(db, event_id, actor))


@router.patch("/events/{event_id}", summary="Change an event (its organizer or an admin)")
async def update_event(
    event_id: UUID, body: EventPatch, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> EventOut:
    await bus.handle(cmd.UpdateEvent(actor=actor, event_id=event_id, changes=body.changes()))
    return EventOut.model_validate(await queries.event_detail(db, event_id, actor))


@router.post("/events/{event_id}/publish", summary="Put a draft event on sale")
async def publish_event(
    event_id: UUID, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> EventOut:
    await bus.handle(cmd.PublishEvent(actor=actor, event_id=event_id))
    return EventOut.model_validate(await queries.event_detail(db, event_id, actor))


@router.post("/events/{event_id}/cancel", summary="Cancel an event: stops sales, releases holds")
async def cancel_event(
    event_id: UUID, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> EventOut:
    await bus.handle(cmd.CancelEvent(actor=actor, event_id=event_id))
    return EventOut.model_validate(await queries.event_detail(db, event_id, actor))


@router.post("/events/{event_id}/ticket-types", status_code=201, summary="Add a ticket type")
async def add_ticket_type(
    event_id: UUID, body: TicketTypeIn, actor: CurrentActor, bus: Bus
) -> TicketTypeOut:
    ticket_type = await bus.handle(
        cmd.AddTicketType(actor=actor, event_id=event_id, **body.model_dump())
    )
    return TicketTypeOut.of(ticket_type)


@router.patch("/ticket-types/{ticket_type_id}", summary="Change a ticket type (total too)")
async def update_ticket_type(
    ticket_type_id: UUID, body: TicketTypePatch, actor: CurrentActor, bus: Bus
) -> TicketTypeOut:
    ticket_type = await bus.handle(
        cmd.UpdateTicketType(actor=actor, ticket_type_id=ticket_type_id, changes=body.changes())
    )
    return TicketTypeOut.of(ticket_type)
