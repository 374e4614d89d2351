"""The organizer's pages: their events, creating and changing one, publishing, cancelling, and
the sales dashboard. Every change goes through the bus, which decides who may make it."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from ticketflow.api.schemas import EventIn, EventPatch
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict, InvalidInput, NotFound
from ticketflow.domain.model import Actor, Role
from ticketflow.services import queries, read_models, sales_history
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.web.forms import (
    FieldErrors,
    NotANumber,
    checked,
    form_fields,
    local_input,
    refusal_errors,
    utc_instant,
    whole_number,
)
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.room_settings import configured_room
from ticketflow.web.sales_chart import sales_chart
from ticketflow.web.session import WebSession, require_role

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Manager = Annotated[WebSession, Depends(require_role(Role.MANAGER, Role.ADMIN))]
EVENT_FIELDS = (
    *("title", "description", "venue", "starts_at", "ends_at"),
    *("sales_start", "sales_end", "max_tickets_per_buyer", "refund_deadline"),
)
INSTANTS = ("starts_at", "ends_at", "sales_start", "sales_end", "refund_deadline")


async def own_event(db: AsyncConnection, event_id: UUID, actor: Actor) -> dict[str, Any]:
    """The event with its ticket types, if `actor` manages it; another's does not exist here."""
    event = await queries.event_row(db, event_id)
    if event is None or not actor.may_manage(event["organizer_id"]):
        raise NotFound("No such event.")
    return event


def _event_body(form: dict[str, str]) -> tuple[dict[str, Any], FieldErrors]:
    body: dict[str, Any] = {name: form[name] for name in ("title", "description", "venue")}
    errors: FieldErrors = {}
    for name in INSTANTS:
        body[name] = utc_instant(form[name])
    for name in ("starts_at", "ends_at"):
        if body[name] is None:
            errors[name] = "Enter a date and time."
    try:
        body["max_tickets_per_buyer"] = whole_number(form["max_tickets_per_buyer"])
    except NotANumber as wrong:
        errors["max_tickets_per_buyer"] = str(wrong)
    return body, errors


async def _event_form(
    request: Request, values: dict[str, Any], errors: FieldErrors, event: dict[str, Any] | None
) -> Response:
    status = 422 if errors else 200
    return await private_page(
        request, "organizer/event_form.html", status, values=values, errors=errors, event=event
    )


@router.get("/organizer")
async def my_events(
    request: Request,
    manager: Manager,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    async with bus_of(request).engine.connect() as db:
        page = await queries.list_events(
            db, cursor=cursor, limit=DEFAULT_LIMIT, organized_by=manager.actor
        )
    return await private_page(request, "organizer/events.html", page=page)


@router.get("/organizer/events/new")
async def new_event_form(request: Request, manager: Manager) -> Response:
    return await _event_form(request, {"max_tickets_per_buyer": "10"}, {}, None)


@router.post("/organizer/events")
async def create_event(request: Request, manager: Manager) -> Response:
    form = await form_fields(request, *EVENT_FIELDS)
    valid = checked(EventIn, *_event_body(form))
    if isinstance(valid, dict):
        return await _event_form(request, form, valid, None)
    try:
        event = await bus_of(request).handle(
            cmd.CreateEvent(actor=manager.actor, **valid.model_dump())
        )
    except (InvalidInput, Conflict) as refusal:
        return await _event_form(request, form, refusal_errors(refusal), None)
    return see_other(f"/organizer/events/{event.id}")


@router.get("/organizer/events/{event_id}/edit")
async def edit_event_form(request: Request, event_id: UUID, manager: Manager) -> Response:
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    values = {name: event[name] for name in EVENT_FIELDS}
    values.update({name: local_input(event[name]) for name in INSTANTS})
    values["max_tickets_per_buyer"] = str(event["max_tickets_per_buyer"] or "")
    return await _event_form(request, values, {}, event)


@router.post("/organizer/events/{event_id}/edit")
async def edit_event(request: Request, event_id: UUID, manager: Manager) -> Response:
    form = await form_fields(request, *EVENT_FIELDS)
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    valid = checked(EventPatch, *_event_body(form))
    if isinstance(valid, dict):
        return await _event_form(request, form, valid, event)
    try:
        await bus_of(request).handle(cmd.UpdateEvent(manager.actor, event_id, valid.changes()))
    except (InvalidInput, Conflict) as refusal:
        return await _event_form(request, form, refusal_errors(refusal), event)
    return see_other(f"/organizer/events/{event_id}")


@router.post("/organizer/events/{event_id}/publish")
async def publish_event(request: Request, event_id: UUID, manager: Manager) -> Response:
    await bus_of(request).handle(cmd.PublishEvent(manager.actor, event_id))
    return see_other(f"/organizer/events/{event_id}")


@router.get("/organizer/events/{event_id}/cancel")
async def cancel_event_form(request: Request, event_id: UUID, manager: Manager) -> Response:
    """The confirmation step: cancelling refunds every buyer and can't be undone."""
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
        sales = await read_models.sales_summary(db, event_id, manager.actor)
    return await private_page(request, "organizer/cancel.html", event=event, sales=sales)


@router.post("/organizer/events/{event_id}/cancel")
async def cancel_event(request: Request, event_id: UUID, manager: Manager) -> Response:
    await bus_of(request).handle(cmd.CancelEvent(manager.actor, event_id))
    return see_other(f"/organizer/events/{event_id}")


@router.get("/organizer/events/{event_id}")
async def sales_dashboard(request: Request, event_id: UUID, manager: Manager) -> Response:
    """Sales per ticket type and over time, five queries whatever the number of types; and
    the waiting room's line as it stands, if the room is on."""
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
        sales = await read_models.sales_summary(db, event_id, manager.actor)
        series, step = await sales_history.tickets_sold_over_time(db, event_id)
    site = str(request.base_url).rstrip("/")
    room = configured_room(event)
    line = await bus_of(request).deps.rooms.line_now(event_id) if room and room.enabled else None
    return await private_page(
        request,
        "organizer/dashboard.html",
        event=event,
        sales=sales,
        chart=sales_chart(series, step),
        room=room,
        line=line,
        site=site,
    )
