"""The door: a scanner (a USB one types the code and Enter) admits tickets one by one. With
htmx the answer is a fragment swapped under the form; without JavaScript, the whole page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from ticketflow.domain import commands as cmd
from ticketflow.domain.check_in import CheckIn
from ticketflow.domain.errors import AlreadyCheckedIn, Conflict, DomainError, NotFound, TicketVoid
from ticketflow.web.organizer import Manager, own_event
from ticketflow.web.pages import PageRoute, bus_of, private_page

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _scan_result(outcome: CheckIn | DomainError) -> dict[str, str]:
    """What the door sees: admitted (green) or why not (red), in a few words."""
    if isinstance(outcome, CheckIn):
        return {"admitted": "yes", "title": "Admitted", "detail": outcome.ticket_type_name}
    refused = {"admitted": "", "detail": outcome.detail}
    if isinstance(outcome, AlreadyCheckedIn):
        at: datetime = outcome.admitted_at
        return {**refused, "title": f"Already admitted at {at:%H:%M:%S} UTC", "detail": ""}
    if isinstance(outcome, NotFound):
        return {**refused, "title": "Not a ticket of this event", "detail": ""}
    if isinstance(outcome, TicketVoid):
        return {**refused, "title": "Ticket void"}
    return {**refused, "title": outcome.title}


async def _page(request: Request, event_id: UUID, manager: Manager, **result: Any) -> Response:
    if request.headers.get("hx-request") == "true":
        return await private_page(request, "organizer/_scan_result.html", forms=False, **result)
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    return await private_page(request, "organizer/check_in.html", event=event, **result)


@router.get("/organizer/events/{event_id}/check-in")
async def check_in_page(request: Request, event_id: UUID, manager: Manager) -> Response:
    return await _page(request, event_id, manager, result=None)


@router.post("/organizer/events/{event_id}/check-in")
async def scan(
    request: Request,
    event_id: UUID,
    manager: Manager,
    code: Annotated[str, Form(max_length=64)],
) -> Response:
    """A refusal at the door is an answer, not an error: the page (or fragment) says it."""
    outcome: CheckIn | DomainError
    try:
        outcome = await bus_of(request).handle(
            cmd.CheckInTicket(manager.actor, event_id, code.strip())
        )
    except Conflict as refusal:  # admitted before, void, or the event is not on
        outcome = refusal
    except NotFound as refusal:
        async with bus_of(request).engine.connect() as db:
            await own_event(db, event_id, manager.actor)  # an event of theirs, or 404
        outcome = refusal
    return await _page(request, event_id, manager, result=_scan_result(outcome), code=code)
