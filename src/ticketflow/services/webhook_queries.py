"""The webhooks' read side: endpoints and their delivery logs, plain SQL over a read connection.

Managers and admins only; a manager sees only the endpoints they registered (another's do not
exist for them: 404), an admin sees every one. A deleted endpoint is gone from here, but kept in
the database for its delivery log. The signing secret is never read here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import webhook_deliveries, webhook_endpoints
from ticketflow.domain.errors import NotFound
from ticketflow.domain.model import Actor, Role
from ticketflow.services.catalog import require_organizer
from ticketflow.services.pagination import Page, decode_cursor, page_of

Row = dict[str, Any]
_SHOWN = (
    webhook_endpoints.c.id,
    webhook_endpoints.c.owner_id,
    webhook_endpoints.c.url,
    webhook_endpoints.c.event_types,
    webhook_endpoints.c.created_at,
)
_LOG = tuple(
    c for c in webhook_deliveries.c if c.name not in ("stream_type", "stream_id", "version")
)


def _visible(query: Select[Any], actor: Actor) -> Select[Any]:
    query = query.where(webhook_endpoints.c.disabled_at.is_(None))
    if actor.role is Role.ADMIN:
        return query
    return query.where(webhook_endpoints.c.owner_id == actor.user_id)


async def endpoint(connection: AsyncConnection, actor: Actor, endpoint_id: UUID) -> Row:
    require_organizer(actor, "have webhooks")
    query = _visible(select(*_SHOWN), actor).where(webhook_endpoints.c.id == endpoint_id)
    found = (await connection.execute(query)).mappings().first()
    if found is None:
        raise NotFound("No such webhook.")
    return dict(found)


async def list_endpoints(
    connection: AsyncConnection, actor: Actor, *, cursor: str | None, limit: int
) -> Page[Row]:
    require_organizer(actor, "have webhooks")
    query = _visible(select(*_SHOWN), actor).order_by(webhook_endpoints.c.id).limit(limit + 1)
    if cursor:
        (after,) = decode_cursor(cursor, UUID)
        query = query.where(webhook_endpoints.c.id > after)
    rows = [dict(row) for row in (await connection.execute(query)).mappings()]
    return page_of(rows, limit, lambda row: (row["id"],))


async def delivery_log(
    connection: AsyncConnection,
    actor: Actor,
    endpoint_id: UUID,
    *,
    cursor: str | None,
    limit: int,
) -> Page[Row]:
    """The endpoint's deliveries, newest first: status, attempts, last answer, next attempt."""
    await endpoint(connection, actor, endpoint_id)
    query = (
        select(*_LOG)
        .where(webhook_deliveries.c.endpoint_id == endpoint_id)
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        (before,) = decode_cursor(cursor, UUID)
        query = query.where(webhook_deliveries.c.id < before)
    rows = [dict(row) for row in (await connection.execute(query)).mappings()]
    return page_of(rows, limit, lambda row: (row["id"],))
