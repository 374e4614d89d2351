"""The buyer's storefront: upcoming events, an event's page, checkout, and the buyer's tickets."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ticketflow.domain.errors import NotFound
from ticketflow.services import queries, storefront
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.web.pages import PageRoute, public_page

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _bus(request: Request) -> MessageBus:
    bus: MessageBus = request.app.state.bus
    return bus


@router.get("/")
async def home(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    on: date | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    bus = _bus(request)
    async with bus.engine.connect() as db:
        page = await storefront.upcoming_events(
            db, now=bus.deps.clock.now(), text=q, on_date=on, cursor=cursor, limit=DEFAULT_LIMIT
        )
    return public_page(request, "home.html", page=page, q=q, on=on)


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: UUID) -> Response:
    """Public and cached (its availability is live: web/static/live.js follows the feed)."""
    event, availability, _ = await _bus(request).deps.views.event(event_id, None)
    if not queries.visible(event, None):
        raise NotFound("No such event.")
    return public_page(request, "event.html", event=event, availability=availability)
