"""The organizer's waiting room page (issue 19): turn an event's room on or off, and set when
its pre-queue opens, how fast it admits buyers and how long an admission lasts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ticketflow.api.schemas import WaitingRoomIn
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict, InvalidInput
from ticketflow.web.forms import FieldErrors, checked, form_fields, refusal_errors
from ticketflow.web.organizer import Manager, own_event
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.room_settings import (
    ROOM_FIELDS,
    by_form_field,
    configured_room,
    room_body,
    room_values,
    said_plainly,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def _room_form(
    request: Request, event: dict[str, Any], values: dict[str, str], errors: FieldErrors
) -> Response:
    return await private_page(
        request,
        "organizer/waiting_room.html",
        422 if errors else 200,
        event=event,
        values=values,
        errors=errors,
        fields=ROOM_FIELDS,
    )


@router.get("/organizer/events/{event_id}/waiting-room")
async def waiting_room_form(request: Request, event_id: UUID, manager: Manager) -> Response:
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    return await _room_form(request, event, room_values(configured_room(event)), {})


@router.post("/organizer/events/{event_id}/waiting-room")
async def save_waiting_room(request: Request, event_id: UUID, manager: Manager) -> Response:
    form = await form_fields(request, *ROOM_FIELDS)
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    valid = checked(WaitingRoomIn, *room_body(form))
    if isinstance(valid, dict):
        return await _room_form(request, event, form, said_plainly(valid))
    # The room whole, as PATCH /events/{id} takes it: the event's rules (the pre-queue opens no
    # later than the sale) are the handler's, checked against the event as it is then.
    changes = {"waiting_room": valid.model_dump()}
    try:
        await bus_of(request).handle(cmd.UpdateEvent(manager.actor, event_id, changes))
    except (InvalidInput, Conflict) as refusal:
        return await _room_form(request, event, form, by_form_field(refusal_errors(refusal)))
    return see_other(f"/organizer/events/{event_id}")
