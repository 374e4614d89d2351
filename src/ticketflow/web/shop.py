"""The buyer's storefront: upcoming events, an event's page, checkout, and the buyer's tickets."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ticketflow.api.rate_limits import RateLimits
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError, InvalidInput, NotFound
from ticketflow.domain.model import Booking
from ticketflow.services import queries, storefront
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.web.keyed_forms import Refused, run_once
from ticketflow.web.order_forms import asked_lines, order_choices
from ticketflow.web.pages import PageRoute, bus_of, private_page, public_page, see_other
from ticketflow.web.queue_pages import admission_of
from ticketflow.web.session import SignedIn, current_session

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _day(text: str) -> date | None:
    """The search form's date: empty when the buyer chose none."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as error:
        raise InvalidInput("Choose a date as YYYY-MM-DD.", field="on") from error


@router.get("/")
async def home(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    on: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    bus = bus_of(request)
    on_date = _day(on)
    async with bus.engine.connect() as db:
        page = await storefront.upcoming_events(
            db,
            now=bus.deps.clock.now(),
            text=q,
            on_date=on_date,
            cursor=cursor,
            limit=DEFAULT_LIMIT,
        )
    return public_page(request, "home.html", page=page, q=q, on=on)


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: UUID) -> Response:
    """Public and cached (its availability is live: web/static/live.js follows the feed): read
    from the process's copies as the API's GET /events/{id} is, and kept rendered while they
    stand (web/rendered_pages.py)."""
    event, availability, hit = await bus_of(request).deps.views.event(event_id, None)
    if not queries.visible(event, None):
        raise NotFound("No such event.")
    return public_page(
        request,
        "event.html",
        kept_as=(("event", event_id), (event, availability)),
        hit=hit,
        event=event,
        availability=availability,
    )


NONCE = re.compile(r"[0-9a-f]{32}")


def _nonce() -> str:
    """A fresh key for one order form: sending the form twice holds once (web/keyed_forms.py)."""
    return uuid.uuid4().hex


async def _order_page(
    request: Request,
    event_id: UUID,
    status: int = 200,
    error: DomainError | Refused | None = None,
    asked: Mapping[UUID, int] | None = None,
) -> Response:
    """The order form: a fragment for the event page's htmx, a page of its own otherwise."""
    bus = bus_of(request)
    session = await current_session(request)
    async with bus.engine.connect() as db:
        event = await queries.event_detail(db, event_id, None)
        held = await storefront.holdings(db, session.actor.user_id, event_id) if session else {}
        available = await queries.availability(db, event_id)
    choices = order_choices(event, available, held)
    fragment = bool(request.headers.get("hx-request"))
    # With the event's waiting room on, a buyer orders once admitted from it (web/queue_pages.py);
    # a refused admission (its session over, or spent) sends them to the room again.
    room_on = (event.get("waiting_room") or {}).get("enabled", False)
    refused = error is not None and error.status == 403
    to_the_room = room_on and (admission_of(request, event_id) is None or refused)
    template = "_order_form.html" if fragment else "order.html"
    return await private_page(
        request,
        template,
        status,
        event=event,
        choices=choices,
        nonce=_nonce(),
        error=error,
        asked=asked or {},
        oob_nav=fragment,
        to_the_room=to_the_room,
    )


@router.get("/events/{event_id}/order")
async def order_form(request: Request, event_id: UUID) -> Response:
    return await _order_page(request, event_id)


@router.post("/events/{event_id}/hold")
async def hold(request: Request, event_id: UUID, session: SignedIn) -> Response:
    form = await request.form()
    nonce = str(form.get("nonce", ""))
    try:
        lines = asked_lines(form)
        if not NONCE.fullmatch(nonce):
            raise InvalidInput("The form is out of date: reload the page.", field="nonce")
    except InvalidInput as invalid:
        return await _order_page(request, event_id, invalid.status, invalid)
    limits: RateLimits = request.app.state.rate_limits
    await limits.check_booking(session.actor.user_id)
    command = cmd.HoldTickets(
        actor=session.actor,
        event_id=event_id,
        lines=tuple(lines.items()),
        admission=admission_of(request, event_id),
    )

    async def hold_tickets(bus: MessageBus) -> str:
        booking: Booking = await bus.handle(command)
        return str(booking.id)

    body = json.dumps(sorted((str(tt), n) for tt, n in lines.items())).encode()
    outcome = await run_once(request, session.actor, f"web-hold:{nonce}", body, hold_tickets)
    if isinstance(outcome, Refused):
        return await _order_page(request, event_id, outcome.status, outcome, lines)
    return see_other(f"/checkout/{outcome}")
