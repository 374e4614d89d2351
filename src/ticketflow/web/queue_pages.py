"""The storefront's waiting room: a buyer joins an event's room from its order form, watches
their place on a page that asks for it again when the room says (htmx; each look is also the
place's heartbeat), and once admitted orders with the admission kept in a cookie of that
event's.

The pages are the API's use cases (JoinWaitingRoom, VisitPlace) on the same bus; the admission
is the same signed token the API hands out, checked by the hold as any other."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import NotFound
from ticketflow.domain.waiting_room import PlaceState
from ticketflow.services.waiting_rooms import PlaceView
from ticketflow.web.cookies import set_cookie
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.session import SignedIn

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_PREFIX = "tf_admission_"


def admission_cookie(event_id: UUID) -> str:
    """The cookie keeping a buyer's admission to one event (one per event: a buyer may wait
    in two rooms at once)."""
    return f"{_PREFIX}{event_id.hex}"


def admission_of(request: Request, event_id: UUID) -> str | None:
    return request.cookies.get(admission_cookie(event_id)) or None


@router.post("/events/{event_id}/queue")
async def join(request: Request, event_id: UUID, session: SignedIn) -> Response:
    """Join (or find again: one place per account) and go to the place's page."""
    place = await bus_of(request).handle(cmd.JoinWaitingRoom(session.actor, event_id))
    return see_other(f"/events/{event_id}/queue/{place.ticket_id}")


@router.get("/events/{event_id}/queue/{ticket_id}")
async def place_page(
    request: Request, event_id: UUID, ticket_id: UUID, session: SignedIn
) -> Response:
    bus = bus_of(request)
    place: PlaceView = await bus.handle(cmd.VisitPlace(session.actor, event_id, ticket_id))
    # The event as the visit just read it (the process's copy): the page asks again every few
    # seconds while its buyer waits, and must cost no more than the API's look, no query.
    snapshot = await bus.deps.catalog.get(event_id)
    if snapshot is None:
        raise NotFound("No such event.")
    if place.admission_token and place.admission_expires_at:
        # Kept as long as the session lasts (the hold checks the token's own expiry anyway).
        left = (place.admission_expires_at - bus.deps.clock.now()).total_seconds()
        set_cookie(request, admission_cookie(event_id), place.admission_token, max(1, int(left)))
    fragment = bool(request.headers.get("hx-request"))  # the page asking for its place again
    return await private_page(
        request,
        "_queue_place.html" if fragment else "queue.html",
        event=snapshot[0],
        place=place,
        waiting=place.state is PlaceState.WAITING,
    )
