"""The "webhooks" consumer: each domain event about an organizer's event becomes one pending
delivery per endpoint of that organizer that asked for its type.

It runs in the consumer's inbox transaction (services/event_consumers.py), so each event is fanned
out exactly once; only the delivery worker (services/webhook_delivery.py) speaks HTTP, so a dead
endpoint never slows a booking.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.ids import new_id
from ticketflow.adapters.tables import bookings, events, payments, ticket_types, tickets
from ticketflow.adapters.tables import webhook_deliveries as deliveries
from ticketflow.adapters.tables import webhook_endpoints as endpoints
from ticketflow.domain.events import DomainEvent
from ticketflow.services.event_consumers import Handler, Interest
from ticketflow.services.messagebus import MessageBus

CONSUMER = "webhooks"  # its inbox and consumer group: never rename


_STREAM_KEYS = {
    "event": events.c.id,
    "ticket_type": ticket_types.c.id,
    "booking": bookings.c.id,
    "payment": payments.c.id,
    "ticket": tickets.c.id,
}
_EVENT_ID_OF = {
    "event": select(events.c.id),
    "ticket_type": select(ticket_types.c.event_id),
    "booking": select(bookings.c.event_id),
    "payment": select(bookings.c.event_id).join(payments, payments.c.booking_id == bookings.c.id),
    "ticket": select(bookings.c.event_id).join(tickets, tickets.c.booking_id == bookings.c.id),
}


def _all_event_classes(base: type[DomainEvent]) -> list[type[DomainEvent]]:
    found: list[type[DomainEvent]] = []
    for subclass in base.__subclasses__():
        found += [subclass, *_all_event_classes(subclass)]
    return found


@cache
def webhook_event_types() -> tuple[str, ...]:
    """The domain event types an organizer may subscribe to: those about their events."""
    return tuple(
        sorted(
            {cls.type for cls in _all_event_classes(DomainEvent) if cls.stream_type in _STREAM_KEYS}
        )
    )


async def _organizer_event(
    connection: AsyncConnection, event: StoredEvent
) -> tuple[UUID, UUID] | None:
    """(the event id, its organizer) that `event` concerns, found through its stream."""
    query = _EVENT_ID_OF.get(event.stream_type)
    if query is None:
        return None
    event_id = await connection.scalar(
        query.where(_STREAM_KEYS[event.stream_type] == event.stream_id)
    )
    if event_id is None:
        return None
    organizer = await connection.scalar(
        select(events.c.organizer_id).where(events.c.id == event_id)
    )
    return (event_id, organizer) if organizer is not None else None


def interest_for(bus: MessageBus) -> Interest:
    return LiveEndpoints(bus.engine, bus.deps.clock).could_want


# How long a registration may take to commit: "no endpoint as of t" is only trusted for t this
# far in the past of the moment it was asked.
REGISTRATION_MARGIN = timedelta(seconds=5)
# How long the answer "none live now" stands for the events that had happened when it was given.
NONE_NOW_KEPT = timedelta(seconds=1)


class LiveEndpoints:
    """Whether an endpoint could want an event (fan_out decides which one, by owner, type and
    registration time). With no live endpoint at all, "none as of t" holds for every event that
    happened by t, so a consumer working through a backlog asks once, not per event.

    Fresh events (within the registration margin) ask again, but one answer serves every event
    that had happened when it was given, for a second: as if they had all been handled at that
    moment. A flash sale's thousands of fresh holds then cost a query a second, not one each.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine, self._clock = engine, clock
        self._none_as_of: datetime | None = None
        self._none_now: datetime | None = None  # when "none live" was last the answer

    async def could_want(self, event: StoredEvent) -> bool:
        if event.type not in webhook_event_types():
            return False
        if self._none_as_of is not None and event.occurred_at <= self._none_as_of:
            return False
        now = self._clock.now()
        none_now = self._none_now
        if (
            none_now is not None
            and event.occurred_at <= none_now
            and now - none_now < NONE_NOW_KEPT
        ):
            return False
        live = select(endpoints.c.id).where(endpoints.c.disabled_at.is_(None))
        async with self._engine.connect() as connection:
            any_live = bool(await connection.scalar(select(live.exists())))
        if not any_live:
            self._none_as_of, self._none_now = now - REGISTRATION_MARGIN, now
        return any_live


async def fan_out(connection: AsyncConnection, event: StoredEvent, now: datetime) -> None:
    if event.type not in webhook_event_types():
        return
    found = await _organizer_event(connection, event)
    if found is None:
        return
    event_id, organizer_id = found
    wanting = await connection.execute(
        select(endpoints.c.id, endpoints.c.event_types).where(
            endpoints.c.owner_id == organizer_id,
            endpoints.c.disabled_at.is_(None),
            endpoints.c.created_at <= event.occurred_at,  # registered before it happened
        )
    )
    rows = []
    for endpoint_id, event_types in wanting:
        if event.type not in event_types:
            continue
        delivery_id = new_id()
        rows.append(
            {
                "id": delivery_id,
                "endpoint_id": endpoint_id,
                "stream_type": event.stream_type,
                "stream_id": event.stream_id,
                "version": event.version,
                "event_type": event.type,
                "payload": {
                    "id": str(delivery_id),
                    "type": event.type,
                    "occurred_at": event.occurred_at.isoformat(),
                    "event_id": str(event_id),
                    "subject": {
                        "type": event.stream_type,
                        "id": str(event.stream_id),
                        "version": event.version,
                    },
                    "data": event.data,
                },
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    if rows:
        await connection.execute(insert(deliveries), rows)


def handler_for(bus: MessageBus) -> Handler:
    clock = bus.deps.clock

    async def handle(connection: AsyncConnection, event: StoredEvent) -> None:
        await fan_out(connection, event, clock.now())

    return handle
