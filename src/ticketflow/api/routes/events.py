"""Events and ticket types: public browsing, organizers' management."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from ticketflow.api.caller import request_caller
from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
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
from ticketflow.domain.model import Actor
from ticketflow.services import queries, read_models
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(tags=["events"])


@dataclass(frozen=True)
class CatalogRead:
    """What a public catalog read needs: the bus, the stored bodies and the caller, if any."""

    bus: MessageBus
    bodies: StoredBodies
    actor: Actor | None


# One dependency, not the three (and the caller's own two) the other routes resolve: FastAPI's
# resolution of six was about a third of a hit's CPU (bench/README.md, issue 15). async: FastAPI
# runs a plain `def` dependency in a worker thread, which cost more than the rest of a hit.
async def catalog_read(request: Request) -> CatalogRead:
    bus: MessageBus = request.app.state.bus  # a read spends no Idempotency-Key
    bodies: StoredBodies = request.app.state.stored_bodies
    return CatalogRead(bus, bodies, await request_caller(bus, request.scope))


# The public reads' fast path: a hit is the stored JSON bytes with availability laid in
# (api/stored_bodies.py), from copies this process keeps (services/catalog_views.py); no
# database read, no model validation or serialization.
Read = Annotated[CatalogRead, Depends(catalog_read)]
# The bearer token is optional on these reads (drafts, `mine`): documented as FastAPI documents
# an optional HTTPBearer dependency (api/deps.py), without resolving one.
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}, {"HTTPBearer": []}]}
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
    openapi_extra=OPTIONAL_BEARER,
)
async def list_events(
    read: Read,
    response: Response,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    mine: Annotated[bool, Query(description="Organizers: all your events, drafts too")] = False,
    if_none_match: IfNoneMatch = None,
) -> Response | EventPage:
    if not mine:
        page, availabilities, hit = await read.bus.deps.views.published(cursor, limit)
        body, etag = read.bodies.of_page((cursor, limit), page).filled(availabilities)
        return public_answer(body, etag, hit, if_none_match)
    if read.actor is None:
        raise AuthenticationFailed("Send a bearer token to list your own events.")
    async with read.bus.engine.connect() as db:
        page = await queries.list_events(db, cursor=cursor, limit=limit, organized_by=read.actor)
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
    openapi_extra=OPTIONAL_BEARER,
)
async def get_event(event_id: UUID, read: Read, if_none_match: IfNoneMatch = None) -> Response:
    event, availability, hit = await read.bus.deps.views.event(event_id, read.actor)
    body, etag = read.bodies.of_event(event).filled((availability,))
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
