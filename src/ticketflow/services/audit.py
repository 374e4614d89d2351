"""The audit trail's read side: domain events as stored, filtered, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import domain_events
from ticketflow.domain.errors import PermissionDenied
from ticketflow.domain.model import Actor, Role
from ticketflow.services.pagination import Page, decode_cursor, page_of


@dataclass(frozen=True)
class AuditFilter:
    stream_type: str | None = None
    stream_id: UUID | None = None
    type: str | None = None
    actor_id: UUID | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


async def audit_events(
    connection: AsyncConnection,
    actor: Actor,
    where: AuditFilter,
    *,
    cursor: str | None,
    limit: int,
) -> Page[dict[str, Any]]:
    """Admins only: every event matching `where`, in the order they were appended."""
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("Only admins read the audit trail.")
    query = select(domain_events).order_by(domain_events.c.seq).limit(limit + 1)
    for column, value in (
        (domain_events.c.stream_type, where.stream_type),
        (domain_events.c.stream_id, where.stream_id),
        (domain_events.c.type, where.type),
        (domain_events.c.actor_id, where.actor_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(domain_events.c.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(domain_events.c.occurred_at < where.until)
    if cursor:
        (after,) = decode_cursor(cursor, int)
        query = query.where(domain_events.c.seq > after)
    rows = [dict(row) for row in (await connection.execute(query)).mappings()]
    return page_of(rows, limit, lambda event: (event["seq"],))
