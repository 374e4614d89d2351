"""Cached reads of the public catalog: what most browsing traffic asks for.

Two levels. The shared cache (Redis when configured, so every instance sees one copy) keeps an
event with its ticket types, and the pages of published events, for `detail_ttl`; every write
deletes them. It keeps each event's availability (tickets left per ticket type) for
`availability_ttl`, stamped with when its database read began; nobody deletes it, it changes with
every hold. Each process keeps its own copies of all three in memory (adapters/process_copies.py)
and answers from them without any I/O, renewing them from the shared cache (or the database, when
the shared copy is gone or no younger than they would be renewed at) once they are past a quarter
of `availability_ttl`: the one bound on how stale a public read is anywhere. Availability shown is
as of at most `availability_ttl` ago; a write made on another instance shows within it too (on
this instance, at once).

Nothing a sale decides is read from here: holds read and change the rows under their lock.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from cashews import Cache
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow import metrics
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.process_copies import (
    RENEW_AFTER_SHARE_OF_FRESHNESS,
    Kept,
    ProcessCopies,
)
from ticketflow.domain.errors import NotFound
from ticketflow.domain.model import Actor
from ticketflow.services import queries
from ticketflow.services.pagination import Page

Row = dict[str, Any]
Availability = dict[UUID, int]  # tickets left per ticket type of one event
PageKey = tuple[str | None, int]  # (cursor, limit)
PAGES = "catalog:page:"


class CatalogViews:
    def __init__(
        self,
        engine: AsyncEngine,
        cache: Cache,
        clock: Clock,
        *,
        detail_ttl: float,
        availability_ttl: float,
    ) -> None:
        self._engine, self._cache, self._clock = engine, cache, clock
        self._detail_ttl, self._availability_ttl = detail_ttl, availability_ttl
        self.hits = 0  # answers made without waiting on the shared cache or the database
        self.misses = 0
        detail_fresh_for = availability_ttl if detail_ttl > 0 else 0.0
        self._rows = ProcessCopies(clock, detail_fresh_for, self._renew_row)
        self._pages = ProcessCopies(clock, detail_fresh_for, self._renew_page)
        self._availability = ProcessCopies(clock, availability_ttl, self._renew_availability)

    async def event(self, event_id: UUID, actor: Actor | None) -> tuple[Row, Availability, bool]:
        """The event (its ticket types' `available` as of its row), the availability to show,
        and whether this process's copies answered it all."""
        row, hit = await self._rows.get(event_id)
        if not queries.visible(row, actor):
            raise NotFound("No such event.")
        live, fresh = await self._availability.get(event_id)
        return row, live, self._count(hit and fresh)

    async def published(
        self, cursor: str | None, limit: int
    ) -> tuple[Page[Row], list[Availability], bool]:
        """A page of published events, the availability of each, and whether it was all kept."""
        page, hit = await self._pages.get((cursor, limit))
        availabilities = []
        for row in page.items:
            live, fresh = await self._availability.get(row["id"])
            hit = hit and fresh
            availabilities.append(live)
        return page, availabilities, self._count(hit)

    async def forget_event(self, event_id: UUID) -> None:
        """After a write to the event or its ticket types (called once it committed). The shared
        copies go first: a copy renewed meanwhile must not bring the old one back."""
        await self._cache.delete_many(_event_key(event_id), _availability_key(event_id))
        await self._cache.delete_match(f"{PAGES}*")
        self._rows.forget(event_id)
        self._availability.forget(event_id)
        self._pages.forget_all()

    async def settled(self) -> None:
        """Once the renewals in flight have finished (for tests that check what they brought)."""
        for copies in (self._rows, self._pages, self._availability):
            await copies.settled()

    async def _renew_row(self, event_id: UUID) -> Kept[Row]:
        checked_at = self._now()  # every write deletes the shared copy: it is current now
        key = _event_key(event_id)
        row: Row | None = await self._cache.get(key)
        if row is None:
            async with self._engine.connect() as connection:
                row = await queries.event_row(connection, event_id)
            if row is None:
                raise NotFound("No such event.")
            await self._keep(key, row, self._detail_ttl)
        return Kept(row, checked_at)

    async def _renew_page(self, page_key: PageKey) -> Kept[Page[Row]]:
        checked_at = self._now()
        cursor, limit = page_key
        key = f"{PAGES}{cursor or ''}:{limit}"
        page: Page[Row] | None = await self._cache.get(key)
        if page is None:
            async with self._engine.connect() as connection:
                page = await queries.list_events(connection, cursor=cursor, limit=limit)
            await self._keep(key, page, self._detail_ttl)
        return Kept(page, checked_at)

    async def _renew_availability(self, event_id: UUID) -> Kept[Availability]:
        key = _availability_key(event_id)
        shared: tuple[Availability, float] | None = await self._cache.get(key)
        young = self._availability_ttl * RENEW_AFTER_SHARE_OF_FRESHNESS
        if shared is not None and self._now() - shared[1] < young:
            return Kept(*shared)  # another process read it a moment ago
        read_at = self._now()  # taken before the read: it reflects every commit before this
        async with self._engine.connect() as connection:
            live = await queries.availability(connection, event_id)
        await self._keep(key, (live, read_at), self._availability_ttl)
        return Kept(live, read_at)

    async def _keep(self, key: str, value: object, ttl: float) -> None:
        if ttl > 0:  # 0 turns that part of the cache off (a zero expiry would mean "forever")
            await self._cache.set(key, value, expire=ttl)

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _count(self, hit: bool) -> bool:
        if hit:
            self.hits += 1
            metrics.CACHE_HITS.inc()
        else:
            self.misses += 1
            metrics.CACHE_MISSES.inc()
        return hit


def _event_key(event_id: UUID) -> str:
    return f"catalog:event:{event_id}"


def _availability_key(event_id: UUID) -> str:
    return f"catalog:availability:{event_id}"
