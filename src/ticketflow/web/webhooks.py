"""The organizer's webhooks: their endpoints, registering one (its secret shown once),
deleting one, and an endpoint's recent deliveries."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ticketflow.api.webhook_schemas import WebhookIn
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict, InvalidInput
from ticketflow.services import webhook_queries
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.services.webhook_fanout import webhook_event_types
from ticketflow.web.forms import FieldErrors, checked, refusal_errors
from ticketflow.web.organizer import Manager
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Cursor = Annotated[str | None, Query(max_length=512)]


async def _webhooks_page(
    request: Request,
    manager: Manager,
    *,
    status: int = 200,
    cursor: str | None = None,
    errors: FieldErrors | None = None,
    **context: Any,
) -> Response:
    async with bus_of(request).engine.connect() as db:
        page = await webhook_queries.list_endpoints(
            db, manager.actor, cursor=cursor, limit=DEFAULT_LIMIT
        )
    return await private_page(
        request,
        "organizer/webhooks.html",
        status,
        page=page,
        event_types=webhook_event_types(),
        errors=errors or {},
        **context,
    )


@router.get("/organizer/webhooks")
async def webhooks(request: Request, manager: Manager, cursor: Cursor = None) -> Response:
    return await _webhooks_page(request, manager, cursor=cursor)


@router.post("/organizer/webhooks")
async def register_webhook(request: Request, manager: Manager) -> Response:
    """The answer shows the new endpoint's signing secret: the only time it is shown."""
    sent = await request.form()
    url = str(sent.get("url") or "").strip()
    chosen = [str(name) for name in sent.getlist("event_types")]
    valid = checked(WebhookIn, {"url": url, "event_types": chosen})
    if isinstance(valid, dict):
        return await _webhooks_page(request, manager, status=422, errors=valid, url=url)
    try:
        created = await bus_of(request).handle(
            cmd.RegisterWebhook(manager.actor, valid.url, tuple(valid.event_types))
        )
    except (InvalidInput, Conflict) as refusal:  # e.g. a URL into our network, too many
        errors = refusal_errors(refusal)
        return await _webhooks_page(request, manager, status=422, errors=errors, url=url)
    return await _webhooks_page(request, manager, status=201, created=created)


@router.post("/organizer/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: UUID, manager: Manager) -> Response:
    await bus_of(request).handle(cmd.DeleteWebhook(manager.actor, webhook_id))
    return see_other("/organizer/webhooks")


@router.get("/organizer/webhooks/{webhook_id}")
async def deliveries(
    request: Request, webhook_id: UUID, manager: Manager, cursor: Cursor = None
) -> Response:
    async with bus_of(request).engine.connect() as db:
        endpoint = await webhook_queries.endpoint(db, manager.actor, webhook_id)
        page = await webhook_queries.delivery_log(
            db, manager.actor, webhook_id, cursor=cursor, limit=DEFAULT_LIMIT
        )
    return await private_page(request, "organizer/deliveries.html", endpoint=endpoint, page=page)
