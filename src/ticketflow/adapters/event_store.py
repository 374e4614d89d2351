"""The append-only event store: domain events written in the transaction of their change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import domain_events
from ticketflow.domain.events import DomainEvent


@dataclass(frozen=True)
class EventMeta:
    """Who caused the events and in which request."""

    actor_id: UUID | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class StoredEvent:
    """A domain event as the store holds it: what replays, the relay and consumers read."""

    seq: int
    stream_type: str
    stream_id: UUID
    version: int
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    actor_id: UUID | None = None
    request_id: str | None = None

    @classmethod
    def of(cls, row: RowMapping) -> StoredEvent:
        return cls(**{name: row[name] for name in _COLUMNS})


_COLUMNS = (
    "seq",
    "stream_type",
    "stream_id",
    "version",
    "type",
    "data",
    "occurred_at",
    "actor_id",
    "request_id",
)


_APPEND = Direct(insert(domain_events))


async def append(
    connection: AsyncConnection,
    events: Sequence[tuple[DomainEvent, EventMeta]],
    occurred_at: datetime,
    datas: Sequence[dict[str, Any]] | None = None,
    *,
    later: bool = False,
) -> None:
    """Append events, each with the meta of the request that caused it, in one statement
    (`datas`: their `data()`, if the caller has them already; `later`: queued, see
    adapters/direct_sql.py)."""
    if not events:
        return
    if datas is None:
        datas = [event.data() for event, _ in events]
    await _APPEND.run_many(
        connection,
        [
            {
                "stream_type": event.stream_type,
                "stream_id": event.stream_id,
                "version": event.version,
                "type": event.type,
                "data": data,
                "actor_id": meta.actor_id,
                "request_id": meta.request_id,
                "occurred_at": occurred_at,
            }
            for (event, meta), data in zip(events, datas, strict=True)
        ],
        later=later,
    )


async def read_after(connection: AsyncConnection, after_seq: int, limit: int) -> list[StoredEvent]:
    """Up to `limit` events with a seq above `after_seq`, in seq order (the order of a replay)."""
    rows = await connection.execute(
        select(domain_events)
        .where(domain_events.c.seq > after_seq)
        .order_by(domain_events.c.seq)
        .limit(limit)
    )
    return [StoredEvent.of(row) for row in rows.mappings()]
