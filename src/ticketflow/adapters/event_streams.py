"""Domain events on a Redis Stream: how an event is written there (the relay's publisher) and how
a consumer group reads it back (XREADGROUP, XACK, XAUTOCLAIM).

One stream for every event, so the order on it is the store's seq order. Each entry carries the
event as the store holds it (seq, stream, version, type, data as JSON, ...); `(stream_type,
stream_id, version)` identifies an event, for consumers to recognize a delivery they have seen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ticketflow.adapters.event_store import StoredEvent


def encode(event: StoredEvent) -> dict[str, str]:
    fields = {
        "seq": str(event.seq),
        "stream_type": event.stream_type,
        "stream_id": str(event.stream_id),
        "version": str(event.version),
        "type": event.type,
        "data": json.dumps(event.data, separators=(",", ":")),
        "occurred_at": event.occurred_at.isoformat(),
    }
    if event.actor_id is not None:
        fields["actor_id"] = str(event.actor_id)
    if event.request_id is not None:
        fields["request_id"] = event.request_id
    return fields


def decode(raw: dict[bytes, bytes]) -> StoredEvent:
    fields = {name.decode(): value.decode() for name, value in raw.items()}
    actor_id = fields.get("actor_id")
    return StoredEvent(
        seq=int(fields["seq"]),
        stream_type=fields["stream_type"],
        stream_id=UUID(fields["stream_id"]),
        version=int(fields["version"]),
        type=fields["type"],
        data=json.loads(fields["data"]),
        occurred_at=datetime.fromisoformat(fields["occurred_at"]),
        actor_id=UUID(actor_id) if actor_id else None,
        request_id=fields.get("request_id"),
    )


class StreamPublisher:
    """XADDs events to the stream `key`, a batch at a time and all or nothing (MULTI/EXEC)."""

    def __init__(self, redis: Redis, key: str, maxlen: int) -> None:
        self._redis, self.key, self._maxlen = redis, key, maxlen

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for event in events:
                fields: dict[Any, Any] = encode(event)  # redis-py wants a dict of its unions
                pipe.xadd(self.key, fields, maxlen=self._maxlen, approximate=True)
            await pipe.execute()


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to a consumer: acknowledge it once handled."""

    entry_id: bytes
    event: StoredEvent


class StreamGroupReader:
    """One member (`consumer`) of the consumer group `group` on the stream `key`.

    Entries it was given but did not acknowledge (it crashed) come back first, then new ones;
    `claim_stale` takes over the entries of a member that has gone away.
    """

    def __init__(
        self, redis: Redis, key: str, group: str, consumer: str, *, start: str = "0"
    ) -> None:
        self._redis, self._key, self._group, self._consumer = redis, key, group, consumer
        self._start = start  # where a new group begins: "0" = the whole stream, "$" = from now
        self._backlog = True  # first re-read what this member was given before a crash

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._key, self._group, id=self._start, mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self, count: int, block_ms: int | None = None) -> list[Delivery]:
        if self._backlog:
            pending = await self._read("0", count, None)
            if pending:
                return pending
            self._backlog = False
        return await self._read(">", count, block_ms)

    async def _read(self, after: str, count: int, block_ms: int | None) -> list[Delivery]:
        try:
            answer: Any = await self._redis.xreadgroup(
                self._group, self._consumer, {self._key: after}, count=count, block=block_ms
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()  # Redis lost it (flushed, restarted without persistence)
            return []
        return [
            Delivery(entry_id, decode(fields))
            for _, entries in answer or []  # [[key, entries]] (RESP2, redis-py's default)
            for entry_id, fields in entries
            if fields  # an entry trimmed away while pending comes back empty: nothing to do
        ]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self._redis.xack(self._key, self._group, *(d.entry_id for d in deliveries))

    async def claim_stale(self, min_idle_ms: int, count: int) -> list[Delivery]:
        """Entries another member was given `min_idle_ms` ago and never acknowledged."""
        answer: Any = await self._redis.xautoclaim(
            self._key, self._group, self._consumer, min_idle_ms, count=count
        )
        return [Delivery(entry_id, decode(fields)) for entry_id, fields in answer[1] if fields]
