"""Organizers' webhook endpoints: registering, listing, deleting, and their delivery logs.

Managers and admins only; a manager sees only the endpoints they registered (another's do not
exist for them: 404), an admin sees every one. A deleted endpoint is disabled, not removed, so its
delivery log stays; its pending deliveries are given up at once.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters.db import WRITE
from ticketflow.adapters.idempotency_store import IdempotencyKeys, KeyScope
from ticketflow.adapters.ids import new_id
from ticketflow.adapters.outbound_targets import Resolver, TargetRefused, checked, resolve
from ticketflow.adapters.tables import webhook_deliveries, webhook_endpoints
from ticketflow.config import Settings
from ticketflow.domain.errors import InvalidInput, LimitReached, NotFound
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


async def register_endpoint(
    engine: AsyncEngine,
    settings: Settings,
    actor: Actor,
    url: str,
    event_types: list[str],
    now: datetime,
    resolver: Resolver = resolve,
    key: KeyScope | None = None,
) -> Row:
    """A new endpoint of `actor`'s, with its signing secret (shown to the caller this once);
    `key`, the request's Idempotency-Key, is spent with the insert.
    Its URL must lead outside our network (adapters/outbound_targets.py), over https in
    production; an organizer has at most `webhook_max_endpoints_per_owner` live ones."""
    require_organizer(actor, "have webhooks")
    try:
        await checked(
            url,
            allow_private=settings.webhook_allow_private_networks,
            resolver=resolver,
            https_only=settings.environment == "production",
        )
    except TargetRefused as refused:
        raise InvalidInput(f"The URL can't receive webhooks: {refused}.", field="url") from None
    endpoint_id = new_id()
    row: Row = {
        "id": endpoint_id,
        "owner_id": actor.user_id,
        "url": url,
        "secret": f"whsec_{secrets.token_urlsafe(32)}",
        "event_types": sorted(set(event_types)),
        "created_at": now,
        "disabled_at": None,
    }
    most = settings.webhook_max_endpoints_per_owner
    async with engine.connect() as connection:
        await connection.execution_options(**WRITE)
        async with connection.begin():
            live = (
                select(func.count())
                .select_from(webhook_endpoints)
                .where(
                    webhook_endpoints.c.owner_id == actor.user_id,
                    webhook_endpoints.c.disabled_at.is_(None),
                )
            )
            if (await connection.scalar(live) or 0) >= most:
                raise LimitReached(f"You have {most} webhook endpoints; delete one to add another.")
            await connection.execute(webhook_endpoints.insert().values(row))
            if key is not None:
                await IdempotencyKeys(connection).mark_committed(
                    [(key, "webhook_endpoint", endpoint_id)]
                )
    return row


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


async def delete_endpoint(
    engine: AsyncEngine, actor: Actor, endpoint_id: UUID, now: datetime
) -> None:
    async with engine.connect() as connection:
        await connection.execution_options(**WRITE)
        async with connection.begin():
            await endpoint(connection, actor, endpoint_id)
            await connection.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(disabled_at=now)
            )
            await connection.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.endpoint_id == endpoint_id,
                    webhook_deliveries.c.status == "pending",
                )
                .values(status="dead", next_attempt_at=None, last_error="endpoint deleted")
            )


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
