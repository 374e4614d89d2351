"""Events and ticket types: public browsing, organizers' management."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, OptionalActor, ReadConnection
from ticketflow.api.http_caching import (
    CACHED_READ_RESPONSES,
    PRIVATE,
    private_answer,
    public_answer,
)
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
from ticketflow.api.stored_bodies import StoredBodies
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import AuthenticationFailed
from ticketflow.services import queries, read_models
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(tags=["events"])


# async: FastAPI runs a plain `def` dependency in a worker thread, which cost more than the
# whole rest of a hit.
async def _stored_bodies(request: Request) -> StoredBodies:
    bodies: StoredBodies = request.app.state.stored_bodies
    return bodies


# The public reads' fast path: a hit is the stored JSON bytes with availability laid in
# (api/stored_bodies.py), from copies this process keeps (services/catalog_views.py); no
# database read, no model validation or serialization.
Bodies = Annotated[StoredBodies, Depends(_stored_bodies)]
IfNoneMatch = Annotated[
    str | None, Header(description="An ETag of an earlier answer: 304 if it is still current")
]
PUBLIC_READ = """

**Freshness.** The availability shown is as of at most TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS
(default 1 s) before the answer, on any instance; a change to an event made through another
instance shows within the same bound (through this one, at once); an answer kept by a cache on
the way (nginx in front keeps it a second) is older by that. Header `X-Cache: hit|miss`: whether
this instance's copies answered without reading. Nothing a booking decides is read from them.

**HTTP caching.** `ETag` is strong: a hash of exactly the body's bytes. Send it back in
`If-None-Match` and an unchanged answer is `304 Not Modified`, without a body. `Cache-Control:
public, max-age=1, stale-while-revalidate=5`: any cache may keep the answer one second (nginx in
front does), and answer it up to 5 s past that while it fetches the next one. An answer that
depends on the caller is `Cache-Control: private, no-store`, without an ETag."""


@router.get(
    "/events",
    response_model=EventPage,
    responses=CACHED_READ_RESPONSES,
    summary="Published events by start time (or your own with mine=true)",
    description="The public list (without `mine`) is the same for everyone, and cached."
    + PUBLIC_READ
    + " `mine=true` is such an answer.",
)
async def list_events(
    bus: Bus,
    bodies: Bodies,
    response: Response,
    actor: OptionalActor,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    mine: Annotated[bool, Query(description="Organizers: all your events, drafts too")] = False,
    if_none_match: IfNoneMatch = None,
) -> Response | EventPage:
    if not mine:
        page, availabilities, hit = await bus.deps.views.published(cursor, limit)
        body, etag = bodies.of_page((cursor, limit), page).filled(availabilities)
        return public_answer(body, etag, hit, if_none_match)
    if actor is None:
        raise AuthenticationFailed("Send a bearer token to list your own events.")
    async with bus.engine.connect() as db:
        page = await queries.list_events(db, cursor=cursor, limit=limit, organized_by=actor)
    response.headers["Cache-Control"] = PRIVATE
    return EventPage.model_validate(page, from_attributes=True)


@router.post("/events", status_code=201, summary="Create a draft event (managers)")
async def create_event(
    body: EventIn, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> EventOut:
    event = await bus.handle(cmd.CreateEvent(actor=actor, **body.model_dump()))
    return EventOut.model_validate(await queries.event_detail(db, event.id, actor))


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    responses=CACHED_READ_RESPONSES,
    summary="One event with live availability per ticket type",
    description="A published (or cancelled, or completed) event is the same for everyone, and "
    "cached."
    + PUBLIC_READ
    + " A draft, shown only to its organizer and admins, is such an answer.",
)
async def get_event(
    event_id: UUID,
    bus: Bus,
    bodies: Bodies,
    actor: OptionalActor,
    if_none_match: IfNoneMatch = None,
) -> Response:
    event, availability, hit = await bus.deps.views.event(event_id, actor)
    body, etag = bodies.of_event(event).filled((availability,))
    if not queries.visible(event, None):  # a draft, shown to who may manage it
        return private_answer(body, hit)
    return public_answer(body, etag, hit, if_none_match)


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
