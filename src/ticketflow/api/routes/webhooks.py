"""Organizers' webhooks: register endpoints for event types, read their delivery logs."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
from ticketflow.api.webhook_schemas import (
    WebhookCreatedOut,
    WebhookDeliveryPage,
    WebhookIn,
    WebhookOut,
    WebhookPage,
)
from ticketflow.domain import commands as cmd
from ticketflow.services import webhook_queries
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    summary="Register a webhook endpoint (managers, admins)",
    description="Deliveries are POSTed with `TicketFlow-Signature: t=<unix seconds>,v1=<hex "
    "HMAC-SHA256(secret, t + '.' + body)>`, `TicketFlow-Event-Id` (the same on every retry) and "
    "`TicketFlow-Event-Type`; failures are retried with growing delays for 24 hours. The "
    "`secret` is in this answer only.",
)
async def register_webhook(body: WebhookIn, actor: CurrentActor, bus: Bus) -> WebhookCreatedOut:
    command = cmd.RegisterWebhook(actor, body.url, tuple(body.event_types))
    return WebhookCreatedOut.model_validate(await bus.handle(command))


@router.get("", summary="Your webhook endpoints (an admin: everyone's)")
async def list_webhooks(
    actor: CurrentActor, db: ReadConnection, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> WebhookPage:
    page = await webhook_queries.list_endpoints(db, actor, cursor=cursor, limit=limit)
    return WebhookPage.model_validate(page, from_attributes=True)


@router.get("/{webhook_id}", summary="One webhook endpoint")
async def get_webhook(webhook_id: UUID, actor: CurrentActor, db: ReadConnection) -> WebhookOut:
    return WebhookOut.model_validate(await webhook_queries.endpoint(db, actor, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a webhook endpoint; its pending deliveries are given up",
)
async def delete_webhook(webhook_id: UUID, actor: CurrentActor, bus: Bus) -> Response:
    await bus.handle(cmd.DeleteWebhook(actor, webhook_id))
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    summary="The endpoint's delivery log, newest first",
    description="Status (pending, delivered, dead), attempts, the last answer and when the next "
    "attempt is due.",
)
async def list_deliveries(
    webhook_id: UUID,
    actor: CurrentActor,
    db: ReadConnection,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> WebhookDeliveryPage:
    page = await webhook_queries.delivery_log(db, actor, webhook_id, cursor=cursor, limit=limit)
    return WebhookDeliveryPage.model_validate(page, from_attributes=True)
