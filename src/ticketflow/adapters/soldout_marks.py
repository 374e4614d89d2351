"""Sold-out marks: in a flash sale most requests lose, so losers are told without the database.

A mark is only ever a hint that makes us refuse early; the database decides every sale. Marks live
in each process (checked first, trusted for `local_ttl`) and in Redis (shared by all processes,
short-lived). Returning tickets clears both, so a returned ticket is sellable again within
`local_ttl` everywhere. When neither knows, one query per process asks the database what is left
(and marks the type again if nothing is): a lapsed or lost Redis mark costs one read, not a flood
of requests to the row lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.single_flight import SingleFlight
from ticketflow.adapters.tables import events, ticket_types

log = logging.getLogger(__name__)

SHARED_TTL = 2  # seconds a Redis mark lives unless cleared sooner (bounds a missed clear)
KNOWN_KEPT = 10_000  # a bound, not an eviction policy: a sale has a few hot ticket types


def _key(ticket_type_id: UUID) -> str:
    return f"ticketflow:soldout:{ticket_type_id}"


class SoldOutMarks:
    def __init__(self, redis: Redis | None, local_ttl: float, engine: AsyncEngine) -> None:
        self._redis = redis
        self._local_ttl = local_ttl
        self._engine = engine
        self._known: dict[UUID, tuple[bool, float]] = {}  # id -> (sold out?, learned at)
        self._asking: SingleFlight[UUID, bool] = SingleFlight()

    async def is_sold_out(self, ticket_type_id: UUID) -> bool:
        known = self._known.get(ticket_type_id)
        if known and time.monotonic() - known[1] < self._local_ttl:
            return known[0]
        # Every request in flight for the type finds the local copy lapsed at once: one asks.
        return await self._asking.run(ticket_type_id, lambda: self._ask(ticket_type_id))

    async def _ask(self, ticket_type_id: UUID) -> bool:
        """Redis first; without a shared mark (it lapsed, Redis is down or absent) the database
        says whether any ticket is left, and a sold-out type is marked again — else every
        request would go all the way to the row lock to learn the same thing."""
        asked_at = time.monotonic()
        if self._redis is not None:
            try:
                if await self._redis.exists(_key(ticket_type_id)):
                    self._remember(ticket_type_id, True, asked_at)
                    return True
            except RedisError:
                log.warning("sold-out marks: Redis unreachable, asking the database instead")
        async with self._engine.connect() as connection:
            available = await connection.scalar(
                select(ticket_types.c.available)
                .join(events, events.c.id == ticket_types.c.event_id)
                .where(ticket_types.c.id == ticket_type_id, events.c.status == "published")
            )
        sold_out = available == 0  # None: no sale on (the booking path says why)
        if sold_out:
            await self.mark(ticket_type_id)
        else:
            self._remember(ticket_type_id, False, asked_at)
        return sold_out

    def _remember(self, ticket_type_id: UUID, sold_out: bool, at: float) -> None:
        if len(self._known) >= KNOWN_KEPT:  # ids come from requests: any UUID may be asked
            self._known.clear()
        self._known[ticket_type_id] = (sold_out, at)

    async def mark(self, ticket_type_id: UUID) -> None:
        self._remember(ticket_type_id, True, time.monotonic())
        if self._redis is not None:
            try:
                await self._redis.set(_key(ticket_type_id), b"1", ex=SHARED_TTL)
            except RedisError:
                log.warning("sold-out marks: could not share a mark through Redis")

    async def clear(self, ticket_type_ids: Iterable[UUID]) -> None:
        ids = list(ticket_type_ids)
        for ticket_type_id in ids:
            self._known.pop(ticket_type_id, None)
        if self._redis is not None and ids:
            try:
                await self._redis.delete(*(_key(ticket_type_id) for ticket_type_id in ids))
            except RedisError:
                log.warning(
                    "sold-out marks: could not clear in Redis; they lapse in %ss", SHARED_TTL
                )
