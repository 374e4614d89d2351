"""The outbox relay: publishes committed domain events, in seq order, to a Redis Stream.

At least once, across crashes and restarts: a round publishes a batch and only then moves the
stored position past it, in the transaction that holds the position, so a crash in between
publishes that batch again (consumers recognize the repeats) and never skips one.

One relay at a time, with any number of app instances: a round locks the position row (`FOR
UPDATE SKIP LOCKED`; others skip the round); on SQLite its write transaction does. Publishing in
seq order from the stored position keeps each stream's events in order, and CommittedEvents never
passes a seq that may still commit (adapters/outbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters import outbox
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.event_streams import StreamPublisher
from ticketflow.services.messagebus import MessageBus


class Publisher(Protocol):
    async def publish(self, events: Sequence[StoredEvent]) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        clock: Clock,
        *,
        position: str,
        batch_size: int,
    ) -> None:
        self._engine, self._publisher, self._clock = engine, publisher, clock
        self.position = position  # the name of its row in outbox_positions
        self._batch_size = batch_size
        self._committed = outbox.CommittedEvents()

    async def relay_once(self) -> int:
        """One round: publish up to a batch of what committed after the stored position, unless
        another relay holds it; the number of events published."""
        async with self._engine.connect() as connection:
            async with connection.begin():  # idle rounds end here, without taking any lock
                if not await outbox.anything_after_position(connection, self.position):
                    return 0
            await connection.execution_options(**WRITE)
            for _ in range(2):  # the second time only if the position had to be created
                async with connection.begin():
                    position = await outbox.claim_position(connection, self.position)
                    if position is not None:
                        return await self._publish_after(connection, position)
                if not await self._created_position(connection):
                    return 0  # another relay holds it: this round is theirs
        return 0

    async def _publish_after(self, connection: AsyncConnection, position: int) -> int:
        events, through = await self._committed.after(connection, position, self._batch_size)
        if events:
            await self._publisher.publish(events)
        if through > position:
            await outbox.advance_position(connection, self.position, through, self._clock.now())
        return len(events)

    async def _created_position(self, connection: AsyncConnection) -> bool:
        async with connection.begin():
            return await outbox.create_position(connection, self.position, self._clock.now())

    async def relay_pending(self) -> int:
        """Rounds until caught up (or another relay has the position): the number published."""
        published = 0
        while count := await self.relay_once():
            published += count
            if count < self._batch_size:
                break
        return published


def redis_relay(bus: MessageBus) -> OutboxRelay:
    """The relay to the configured Redis Stream (TICKETFLOW_EVENTS_STREAM)."""
    settings, redis = bus.deps.settings, bus.deps.redis
    if redis is None:
        raise RuntimeError("the outbox relay publishes to Redis: set TICKETFLOW_REDIS_URL")
    publisher = StreamPublisher(redis, settings.events_stream, settings.events_stream_maxlen)
    return OutboxRelay(
        bus.engine,
        publisher,
        bus.deps.clock,
        position=f"redis:{settings.events_stream}",
        batch_size=settings.relay_batch_size,
    )
