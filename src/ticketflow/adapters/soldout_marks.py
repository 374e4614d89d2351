"""Sold-out marks: in a flash sale most requests lose, so losers are told without the database.

A mark is only ever a hint that makes us refuse early; the database decides every sale. Marks live
in each process (checked first, trusted for `local_ttl`) and in Redis (shared by all processes,
short-lived). Returning tickets clears both, so a returned ticket is sellable again within
`local_ttl` everywhere; a lost Redis just means more requests reach the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SHARED_TTL = 2  # seconds a Redis mark lives unless cleared sooner (bounds a missed clear)


def _key(ticket_type_id: UUID) -> str:
    return f"ticketflow:soldout:{ticket_type_id}"


class SoldOutMarks:
    def __init__(self, redis: Redis | None, local_ttl: float) -> None:
        self._redis = redis
        self._local_ttl = local_ttl
        self._known: dict[UUID, tuple[bool, float]] = {}  # id -> (sold out?, learned at)

    async def is_sold_out(self, ticket_type_id: UUID) -> bool:
        now = time.monotonic()
        known = self._known.get(ticket_type_id)
        if known and now - known[1] < self._local_ttl:
            return known[0]
        if self._redis is None:
            self._known.pop(ticket_type_id, None)
            return False
        try:
            sold_out = bool(await self._redis.exists(_key(ticket_type_id)))
        except RedisError:
            log.warning("sold-out marks: Redis unreachable, asking the database instead")
            return False
        self._known[ticket_type_id] = (sold_out, now)
        return sold_out

    async def mark(self, ticket_type_id: UUID) -> None:
        self._known[ticket_type_id] = (True, time.monotonic())
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
