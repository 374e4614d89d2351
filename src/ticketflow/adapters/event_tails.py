"""Following every event as it is published, from "now" on, with no consumer group: each app
process sees every event (live updates fan out to that process's own clients).

With Redis: XREAD on the events stream after the last entry seen. Embedded: the event store read
in seq order after the newest seq seen, with the relay's care for seqs still in flight
(adapters/outbox.py). Either way a batch is `(entry id, event)` pairs; the id is what SSE clients
get as `id:`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters import outbox
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.event_streams import decode
from ticketflow.adapters.tables import domain_events

Batch = list[tuple[str, StoredEvent]]
BLOCK_MS = 1000  # how long one XREAD waits for news (a cancelled task needn't wait that long)
BATCH = 500


class EventTail(Protocol):
    async def start(self) -> str:
        """Take the current end as the starting point; the id of the last entry before it."""
        ...

    async def next_batch(self) -> Batch:
        """What was published since the last batch; may wait a while, may be empty."""
        ...


class StreamTail:
    def __init__(self, redis: Redis, key: str) -> None:
        self._redis, self._key = redis, key
        self._last = "0-0"

    async def start(self) -> str:
        # The newest id, not "$": "$" means "after whatever is last when XREAD runs", and the
        # events between this start and that first XREAD would be lost.
        newest: Any = await self._redis.xrevrange(self._key, count=1)
        self._last = newest[0][0].decode() if newest else "0-0"
        return self._last

    async def next_batch(self) -> Batch:
        answer: Any = await self._redis.xread({self._key: self._last}, count=BATCH, block=BLOCK_MS)
        batch: Batch = []
        for _, entries in answer or []:
            for entry_id, fields in entries:
                self._last = entry_id.decode()
                if fields:
                    batch.append((self._last, decode(fields)))
        return batch


class StoreTail:
    def __init__(self, engine: AsyncEngine, poll_seconds: float) -> None:
        self._engine, self._poll = engine, poll_seconds
        self._position = 0
        self._committed = outbox.CommittedEvents()

    async def start(self) -> str:
        async with self._engine.connect() as connection:
            newest = await connection.scalar(select(func.max(domain_events.c.seq)))
        self._position = int(newest or 0)
        return str(self._position)

    async def next_batch(self) -> Batch:
        async with self._engine.connect() as connection, connection.begin():
            events, self._position = await self._committed.after(connection, self._position, BATCH)
        if not events:
            await asyncio.sleep(self._poll)
        return [(str(event.seq), event) for event in events]
