"""Consuming domain events once each, for the consumers to come (e-mail, webhooks, live updates).

A consumer has a name and a handler. Each event is recorded in the consumer's inbox under its
identity in the store, `(stream_type, stream_id, version)`, in the transaction the handler runs in:
a repeat (the relay publishes at least once; a crashed reader is handed its entries again) finds
the record and is skipped. Handlers whose effects are writes in that transaction apply each event
exactly once; effects outside it (mail, HTTP) happen at least once.

Events come from a Redis Stream consumer group when Redis is configured, or, embedded, straight
from the event store after the consumer's own stored position: `event_source_for` picks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy import Select, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters import outbox
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.event_streams import Delivery, StreamGroupReader
from ticketflow.adapters.tables import consumer_inbox
from ticketflow.services.messagebus import MessageBus

Handler = Callable[[AsyncConnection, StoredEvent], Awaitable[None]]
# Whether the consumer has anything to do for an event, asked first: most events concern few
# consumers, and one that has nothing to do writes nothing (no inbox record, no commit), which
# under a flash sale's thousands of events per second is the difference.
Interest = Callable[[StoredEvent], Awaitable[bool]]


class EventSource(Protocol):
    async def read(self, count: int) -> list[Delivery]: ...
    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...


class EventConsumer:
    """`effects_outside`: the handler's effects are outside the database (mail). It then runs on
    a read connection and the event is recorded right after, in a short write of its own, so no
    write lock (on SQLite: THE write lock) is held while a mail server takes its time. A crash in
    between repeats the effect, which at-least-once allows."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        name: str,
        handler: Handler,
        *,
        effects_outside: bool = False,
        interested: Interest | None = None,
    ) -> None:
        self._engine, self._clock, self.name, self._handler = engine, clock, name, handler
        self._effects_outside = effects_outside
        self._interested = interested

    async def apply(self, event: StoredEvent) -> bool:
        """Handle `event` unless this consumer has before, or has nothing to do for it; whether
        it did now."""
        if self._interested is not None and not await self._interested(event):
            return False
        if self._effects_outside:
            return await self._apply_then_record(event)
        async with self._engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                if not await self._recorded_now(connection, event):
                    return False
                await self._handler(connection, event)
        return True

    async def _apply_then_record(self, event: StoredEvent) -> bool:
        async with self._engine.connect() as connection:
            if await connection.scalar(select(self._inbox_row(event).exists())):
                return False
            await self._handler(connection, event)
        async with self._engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                await self._recorded_now(connection, event)  # False: a twin got here first
        return True

    def _inbox_row(self, event: StoredEvent) -> Select[tuple[int]]:
        return select(1).where(
            consumer_inbox.c.consumer == self.name,
            consumer_inbox.c.stream_type == event.stream_type,
            consumer_inbox.c.stream_id == event.stream_id,
            consumer_inbox.c.version == event.version,
        )

    async def _recorded_now(self, connection: AsyncConnection, event: StoredEvent) -> bool:
        """Record `event` in the inbox, in `connection`'s transaction; False if it was already
        (handled before, or right now elsewhere)."""
        try:
            async with connection.begin_nested():
                await connection.execute(
                    insert(consumer_inbox).values(
                        consumer=self.name,
                        stream_type=event.stream_type,
                        stream_id=event.stream_id,
                        version=event.version,
                        handled_at=self._clock.now(),
                    )
                )
        except IntegrityError:
            return False
        return True


async def consume_once(source: EventSource, consumer: EventConsumer, count: int = 100) -> int:
    """Apply up to `count` entries `source` has now, then acknowledge them; how many it took
    (repeats included: 0 means caught up). A crash before the acknowledgement hands the same
    entries over again, and the inbox skips the ones applied already."""
    deliveries = await source.read(count)
    for delivery in deliveries:
        await consumer.apply(delivery.event)
    await source.ack(deliveries)
    return len(deliveries)


class EventStoreReader:
    """Embedded mode (no Redis): a consumer reads the event store itself, from its own position
    (`consumer:<name>` in outbox_positions), with the relay's care for seqs still in flight."""

    def __init__(self, engine: AsyncEngine, clock: Clock, consumer: str) -> None:
        self._engine, self._clock = engine, clock
        self._position = f"consumer:{consumer}"
        self._committed = outbox.CommittedEvents()
        self._through: int | None = None  # where the last read ended, stored on its ack

    async def read(self, count: int) -> list[Delivery]:
        async with self._engine.connect() as connection, connection.begin():
            position = await outbox.read_position(connection, self._position)
            events, self._through = await self._committed.after(connection, position, count)
        return [Delivery(str(event.seq).encode(), event) for event in events]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        through, self._through = self._through, None
        if through is None:
            return
        async with self._engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                now = self._clock.now()
                await outbox.create_position(connection, self._position, now)
                await outbox.advance_position(connection, self._position, through, now)


async def event_source_for(bus: MessageBus, consumer: str) -> EventSource:
    """Where the consumer `consumer` reads: with Redis, the consumer group of that name on the
    events stream (one member per process: host and pid; `claim_stale` adopts the entries of a
    member that died); without, the event store."""
    if bus.deps.redis is None:
        return EventStoreReader(bus.engine, bus.deps.clock, consumer)
    member = f"{socket.gethostname()}:{os.getpid()}"
    reader = StreamGroupReader(bus.deps.redis, bus.deps.settings.events_stream, consumer, member)
    await reader.ensure_group()
    return reader
