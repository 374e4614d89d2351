"""The embeddable widget: `/widget.js`, which another site includes to show an event's tickets
in an iframe, and the page in that iframe, the one page any site may frame (api/hardening.py)."""

from __future__ import annotations

import hashlib
from functools import cache
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ticketflow.api.http_caching import etag_matches
from ticketflow.domain.errors import NotFound
from ticketflow.services import queries
from ticketflow.web.pages import PageRoute, bus_of, public_page
from ticketflow.web.static_files import STATIC_DIR

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# Its URL is fixed (sites paste it), so unlike our hashed static files it can't be kept for a
# year: an hour, then revalidated with its ETag.
SCRIPT_CACHE = "public, max-age=3600"


@cache  # read once per process: it changes only with a release
def _script() -> tuple[bytes, str]:
    body = (STATIC_DIR / "widget.js").read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@router.get("/widget.js")
async def widget_script(request: Request) -> Response:
    body, etag = _script()
    headers = {"ETag": etag, "Cache-Control": SCRIPT_CACHE}
    if etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript", headers=headers)


@router.get("/widget/events/{event_id}")
async def widget_event(request: Request, event_id: UUID) -> Response:
    """The event's ticket types, prices and what is left; buying happens on our event page."""
    event, availability, _ = await bus_of(request).deps.views.event(event_id, None)
    if not queries.visible(event, None):
        raise NotFound("No such event.")
    return public_page(request, "widget/event.html", event=event, availability=availability)
