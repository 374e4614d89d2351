"""Short-lived per-process copies of events and their ticket types for the booking hot path.

They only let a request be checked and refused early (unknown ids, drafts, limits); whatever a
hold finally gets (availability, price, sales window) is read again under the row lock.
"""

from __future__ import annotations

import time
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.catalog_repository import CatalogRepository
from ticketflow.adapters.single_flight import SingleFlight
from ticketflow.domain.model import Event, TicketType

Snapshot = tuple[Event, dict[UUID, TicketType]]


class CatalogSnapshots:
    def __init__(self, engine: AsyncEngine, ttl_seconds: float) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._cached: dict[UUID, tuple[Snapshot | None, float]] = {}
        self._loading: SingleFlight[UUID, Snapshot | None] = SingleFlight()

    async def get(self, event_id: UUID, *, fresh: bool = False) -> Snapshot | None:
        """The event and its ticket types; `fresh` skips the copy (before refusing on it)."""
        if fresh:
            return await self._load(event_id)
        cached = self._cached.get(event_id)
        if cached is None:
            # One load per event at a time: the hundreds of requests in flight for an event
            # nobody asked about yet wait for one query instead of each sending it.
            return await self._loading.run(event_id, lambda: self._load(event_id))
        if time.monotonic() - cached[1] >= self._ttl:
            # A lapsed copy still answers while one load renews it: it is only ever a hint.
            self._loading.start(event_id, lambda: self._load(event_id))
        return cached[0]

    async def forget(self, event_id: UUID) -> None:
        """The event changed (here): the next request reads it again."""
        self._cached.pop(event_id, None)

    async def _load(self, event_id: UUID) -> Snapshot | None:
        loaded_at = time.monotonic()
        async with self._engine.connect() as connection:
            catalog = CatalogRepository(connection)
            event = await catalog.get_event(event_id)
            snapshot = (event, await catalog.ticket_types_of(event_id)) if event else None
        if len(self._cached) > 10_000:  # a bound, not an eviction policy: events are few
            self._cached.clear()
        self._cached[event_id] = (snapshot, loaded_at)
        return snapshot
