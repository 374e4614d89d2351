"""Live availability: each app process follows the published events (one tail, started with
the first subscriber) and pushes fresh availability to its own subscribers of each event.

An event that may change an event's availability (a hold, a release, a ticket type added or
resized) marks that event; a marked event's availability is read once and pushed to all its
subscribers, then reads pause `coalesce` seconds so a burst of bookings costs one read per
pause, not one per booking. Each subscriber has a bounded queue: one that falls `queue_size`
updates behind is dropped (its client reconnects and gets a snapshot), never waited for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.event_tails import EventTail, StoreTail, StreamTail
from ticketflow.domain.errors import ServiceUnavailable
from ticketflow.services import queries
from ticketflow.services.messagebus import MessageBus

log = logging.getLogger(__name__)

CHANGES_AVAILABILITY = frozenset(
    {
        "booking.held",
        "booking.cancelled",
        "booking.expired",
        "booking.refunded",
        "ticket_type.added",
        "ticket_type.updated",
    }
)
RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Availability:
    event_id: UUID
    available: dict[UUID, int]  # per ticket type
    entry_id: str  # the last stream entry (or seq) this reflects at least


class SlowSubscriber(Exception):
    """The subscriber fell too far behind and was dropped."""


@dataclass(eq=False)
class Subscription:
    event_id: UUID
    queue: asyncio.Queue[Availability]
    dropped: bool = field(default=False)

    async def next(self) -> Availability:
        """The next update; SlowSubscriber once dropped and what was queued is taken."""
        if self.dropped and self.queue.empty():
            raise SlowSubscriber(str(self.event_id))
        return await self.queue.get()


class LiveAvailability:
    def __init__(
        self, engine: AsyncEngine, tail: EventTail, *, coalesce_seconds: float, queue_size: int
    ) -> None:
        self._engine, self._tail = engine, tail
        self._coalesce, self._queue_size = coalesce_seconds, queue_size
        self._subscribers: dict[UUID, set[Subscription]] = defaultdict(set)
        self._event_of_ticket_type: dict[UUID, UUID] = {}
        self._dirty: set[UUID] = set()
        self._refreshing: dict[UUID, asyncio.Task[None]] = {}
        self._last_entry = "0"
        self._following: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    async def subscribe(self, event_id: UUID) -> tuple[Subscription, Availability]:
        """A subscription to the event's updates, and its availability now (read after the
        subscription began, so no update can fall between the two)."""
        await self._follow()
        subscription = Subscription(event_id, asyncio.Queue(self._queue_size))
        self._subscribers[event_id].add(subscription)
        try:
            return subscription, await self._read(event_id)
        except BaseException:
            self.unsubscribe(subscription)
            raise

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.event_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.event_id]
            for ticket_type_id, event_id in list(self._event_of_ticket_type.items()):
                if event_id == subscription.event_id:
                    del self._event_of_ticket_type[ticket_type_id]

    async def aclose(self) -> None:
        tasks = [*self._refreshing.values(), *([self._following] if self._following else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self) -> None:
        async with self._starting:
            if self._following is not None:
                return
            try:
                self._last_entry = await self._tail.start()
            except Exception as error:
                log.exception("live availability: cannot follow the events")
                raise ServiceUnavailable("Live updates are unavailable right now.") from error
            self._following = asyncio.create_task(self._run(), name="live availability")

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._tail.next_batch()
            except Exception:
                log.exception("live availability: reading the events failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for entry_id, event in batch:
                self._last_entry = entry_id
                for event_id in self._affected(event):
                    self._mark(event_id)

    def _affected(self, event: StoredEvent) -> set[UUID]:
        if event.type not in CHANGES_AVAILABILITY:
            return set()
        found: set[UUID] = set()
        if "event_id" in event.data:
            found.add(UUID(event.data["event_id"]))
        ticket_types = [UUID(line["ticket_type_id"]) for line in event.data.get("lines", [])]
        if event.stream_type == "ticket_type":
            ticket_types.append(event.stream_id)
        found |= {
            self._event_of_ticket_type[tt]
            for tt in ticket_types
            if tt in self._event_of_ticket_type
        }
        return {event_id for event_id in found if event_id in self._subscribers}

    def _mark(self, event_id: UUID) -> None:
        self._dirty.add(event_id)
        if event_id not in self._refreshing:
            self._refreshing[event_id] = asyncio.create_task(self._refresh(event_id))

    async def _refresh(self, event_id: UUID) -> None:
        try:
            while event_id in self._dirty and event_id in self._subscribers:
                self._dirty.discard(event_id)
                try:
                    self._push(await self._read(event_id))
                except Exception:
                    log.exception("live availability: reading event %s failed", event_id)
                await asyncio.sleep(self._coalesce)  # what arrives meanwhile shares one read
        finally:
            self._dirty.discard(event_id)
            del self._refreshing[event_id]

    async def _read(self, event_id: UUID) -> Availability:
        entry_id = self._last_entry  # taken before the read: the read reflects at least this
        async with self._engine.connect() as connection:
            available = await queries.availability(connection, event_id)
        if event_id in self._subscribers:
            self._event_of_ticket_type.update(dict.fromkeys(available, event_id))
        return Availability(event_id, available, entry_id)

    def _push(self, update: Availability) -> None:
        for subscription in list(self._subscribers.get(update.event_id, ())):
            try:
                subscription.queue.put_nowait(update)
            except asyncio.QueueFull:
                subscription.dropped = True
                self.unsubscribe(subscription)


def live_availability_for(bus: MessageBus) -> LiveAvailability:
    """Fed by the Redis Stream the relay publishes to when Redis is configured (so a booking on
    any instance reaches every instance's clients), else by the event store itself."""
    settings = bus.deps.settings
    tail: EventTail = (
        StreamTail(bus.deps.redis, settings.events_stream)
        if bus.deps.redis is not None
        else StoreTail(bus.engine, settings.live_poll_seconds)
    )
    return LiveAvailability(
        bus.engine,
        tail,
        coalesce_seconds=settings.live_coalesce_seconds,
        queue_size=settings.live_queue_size,
    )
