"""The append-only event store: domain events written in the transaction of their change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import domain_events
from ticketflow.domain.events import DomainEvent


@dataclass(frozen=True)
class EventMeta:
    """Who caused the events and in which request."""

    actor_id: UUID | None = None
    request_id: str | None = None


async def append(
    connection: AsyncConnection,
    events: Sequence[tuple[DomainEvent, EventMeta]],
    occurred_at: datetime,
) -> None:
    """Append events, each with the meta of the request that caused it, in one statement."""
    if not events:
        return
    await connection.execute(
        insert(domain_events),
        [
            {
                "stream_type": event.stream_type,
                "stream_id": event.stream_id,
                "version": event.version,
                "type": event.type,
                "data": event.data(),
                "actor_id": meta.actor_id,
                "request_id": meta.request_id,
                "occurred_at": occurred_at,
            }
            for event, meta in events
        ],
    )
