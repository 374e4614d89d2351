"""Events and their ticket types, including the one statement that takes tickets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.direct_sql import Direct, carries_later
from ticketflow.adapters.tables import events, ticket_types
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Event, EventStatus, TicketType
from ticketflow.domain.waiting_room import WaitingRoom

_EVENT_FIELDS = (
    "title",
    "description",
    "venue",
    "starts_at",
    "ends_at",
    "sales_start",
    "sales_end",
    "max_tickets_per_buyer",
    "refund_deadline",
)
_TICKET_TYPE_FIELDS = ("name", "price_minor", "currency", "max_per_booking", "max_per_buyer")


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        organizer_id=row.organizer_id,
        status=EventStatus(row.status),
        version=row.version,
        waiting_room=WaitingRoom.of(row.waiting_room) if row.waiting_room else None,
        **{name: getattr(row, name) for name in _EVENT_FIELDS},
    )


def _event_values(event: Event) -> dict[str, Any]:
    return {
        "status": event.status.value,
        "version": event.version,
        "waiting_room": event.waiting_room.data() if event.waiting_room else None,
        **{name: getattr(event, name) for name in _EVENT_FIELDS},
    }


def _ticket_type(row: Row[Any], prefix: str = "") -> TicketType:
    def column(name: str) -> Any:
        return getattr(row, prefix + name)

    return TicketType(
        id=column("id"),
        event_id=column("event_id"),
        total=column("total"),
        available=column("available"),
        version=column("version"),
        **{name: column(name) for name in _TICKET_TYPE_FIELDS},
    )


# What a batch of holds allocates from, built once and run directly (every batch runs them,
# adapters/direct_sql.py): the event and the ticket type in one statement (the type's columns
# prefixed, their names being the event's too). Locked: the event share-locked, then the type's
# row (the order cancel_event locks in), still in one statement, and in that order whatever the
# plan: the event is locked as its WITH member yields it, the type only once a joined row is
# out (the statement's last step), and no joined row comes out before the event's.
_TYPE = "type_"
_TYPE_COLUMNS = [column.label(_TYPE + column.name) for column in ticket_types.c]
_FOR_HOLDS = Direct(
    select(events, *_TYPE_COLUMNS)
    .join(ticket_types, ticket_types.c.event_id == events.c.id)
    .where(events.c.id == bindparam("event_id"), ticket_types.c.id == bindparam("type_id"))
)
_EVENT_BY_ID = select(events).where(events.c.id == bindparam("event_id"))
_EVENT_BY_ID_SHARE_LOCKED = _EVENT_BY_ID.with_for_update(read=True)
_SHARE_LOCKED_EVENT = _EVENT_BY_ID_SHARE_LOCKED.cte("share_locked_event")
# NO KEY: the booking lines others insert meanwhile key-share the row (FK).
_FOR_HOLDS_LOCKED = Direct(
    select(_SHARE_LOCKED_EVENT, *_TYPE_COLUMNS)
    .join(ticket_types, ticket_types.c.event_id == _SHARE_LOCKED_EVENT.c.id)
    .where(ticket_types.c.id == bindparam("type_id"))
    .with_for_update(key_share=True, of=ticket_types)
)
_EVENT = Direct(_EVENT_BY_ID)
_EVENT_SHARE_LOCKED = Direct(_EVENT_BY_ID_SHARE_LOCKED)
_TAKE_TICKETS = Direct(
    update(ticket_types)
    .where(
        ticket_types.c.id == bindparam("type_id"),
        ticket_types.c.available >= bindparam("quantity"),
    )
    .values(available=ticket_types.c.available - bindparam("quantity"))
)

# The decrement that checks as it takes (the hold batcher's, services/hold_batcher.py): the
# event share-locked first, as in the locked read (its sub-select is evaluated before the type's
# row is reached), and both as they were read (`version`: every other change bumps it).
_UNCHANGED_EVENT = (
    select(events.c.id)
    .where(events.c.id == bindparam("event_id"), events.c.version == bindparam("event_version"))
    .with_for_update(read=True)
)
_TAKE_UNCHANGED = Direct(
    update(ticket_types)
    .where(
        ticket_types.c.id == bindparam("type_id"),
        ticket_types.c.version == bindparam("type_version"),
        ticket_types.c.available >= bindparam("quantity"),
        exists(_UNCHANGED_EVENT),
    )
    .values(available=ticket_types.c.available - bindparam("quantity"))
    .returning(ticket_types.c.available)
)


class CatalogRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_event(self, event: Event, now: datetime) -> None:
        await self._connection.execute(
            insert(events).values(
                id=event.id, organizer_id=event.organizer_id, created_at=now, **_event_values(event)
            )
        )

    async def get_event(self, event_id: UUID, *, share_lock: bool = False) -> Event | None:
        """The event; `share_lock` keeps it from being cancelled until this transaction ends
        (holds take it, so no hold can slip in after a cancellation released the others)."""
        query = _EVENT_SHARE_LOCKED if share_lock else _EVENT
        row = await query.one_or_none(self._connection, {"event_id": event_id})
        return _event(row) if row else None

    async def for_holds(
        self, event_id: UUID, ticket_type_id: UUID, *, lock: bool
    ) -> tuple[Event, TicketType] | None:
        """A ticket type of this event and the event, as a batch of holds allocates from
        (availability, price, sales window); None if the event has no such type. `lock`: the
        fresh truth, the ticket type locked and its event share-locked first (the order
        cancel_event locks in, so the two can't deadlock)."""
        ids = {"event_id": event_id, "type_id": ticket_type_id}
        row = await (_FOR_HOLDS_LOCKED if lock else _FOR_HOLDS).one_or_none(self._connection, ids)
        return (_event(row), _ticket_type(row, _TYPE)) if row else None

    async def save_event(self, event: Event) -> None:
        """Optimistic: fails if someone else changed the event since it was read."""
        result = await self._connection.execute(
            update(events)
            .where(events.c.id == event.id, events.c.version == event.version - 1)
            .values(**_event_values(event))
        )
        if result.rowcount != 1:
            raise Conflict("The event was changed at the same time; reload and try again.")

    async def add_ticket_type(self, ticket_type: TicketType, now: datetime) -> None:
        await self._connection.execute(
            insert(ticket_types).values(
                id=ticket_type.id,
                event_id=ticket_type.event_id,
                total=ticket_type.total,
                available=ticket_type.available,
                version=ticket_type.version,
                created_at=now,
                **{name: getattr(ticket_type, name) for name in _TICKET_TYPE_FIELDS},
            )
        )

    async def get_ticket_type(self, ticket_type_id: UUID) -> TicketType | None:
        row = (
            await self._connection.execute(
                select(ticket_types).where(ticket_types.c.id == ticket_type_id)
            )
        ).one_or_none()
        return _ticket_type(row) if row else None

    async def ticket_types_of(self, event_id: UUID) -> dict[UUID, TicketType]:
        rows = await self._connection.execute(
            select(ticket_types).where(ticket_types.c.event_id == event_id)
        )
        return {row.id: _ticket_type(row) for row in rows}

    async def save_ticket_type(self, ticket_type: TicketType, total_delta: int) -> None:
        """Apply a new total as a delta on the live `available`, which bookings move meanwhile."""
        result = await self._connection.execute(
            update(ticket_types)
            .where(
                ticket_types.c.id == ticket_type.id,
                ticket_types.c.version == ticket_type.version - 1,
                ticket_types.c.available + total_delta >= 0,
            )
            .values(
                total=ticket_types.c.total + total_delta,
                available=ticket_types.c.available + total_delta,
                version=ticket_type.version,
                **{name: getattr(ticket_type, name) for name in _TICKET_TYPE_FIELDS},
            )
        )
        if result.rowcount != 1:
            raise Conflict(
                "The ticket type changed meanwhile (or its tickets were taken); reload and retry."
            )

    async def take_tickets(self, ticket_type_id: UUID, quantity: int) -> bool:
        """The conditional decrement: True if `quantity` tickets were taken, False if too few."""
        taken = await _TAKE_TICKETS.run(
            self._connection, {"type_id": ticket_type_id, "quantity": quantity}
        )
        return taken == 1

    async def take_unchanged(self, read: tuple[Event, TicketType], quantity: int) -> int | None:
        """Take `quantity` tickets if the event and the ticket type are still as `read` (but
        for `available`) and enough are left; the tickets left after, else None. The writes
        queued in the transaction go with it, its UPDATEs after it and only if it took
        (Direct.rows_first): a hold batch's decrement and counters in one round trip, the
        ticket type's row locked before the counters' rows, as everywhere."""
        event, ticket_type = read
        params = {
            "event_id": event.id,
            "event_version": event.version,
            "type_id": ticket_type.id,
            "type_version": ticket_type.version,
            "quantity": quantity,
        }
        rows = await _TAKE_UNCHANGED.rows_first(self._connection, params)
        return rows[0].available if rows else None

    @property
    def takes_unchanged(self) -> bool:
        """Whether `take_unchanged` can run here (where queued writes are carried)."""
        return carries_later(self._connection)

    async def return_tickets(self, quantities: Mapping[UUID, int]) -> None:
        """Put released tickets back on sale, in id order so concurrent releases can't deadlock."""
        if not quantities:
            return
        await self._connection.execute(
            update(ticket_types)
            .where(ticket_types.c.id == bindparam("tt_id"))
            .values(available=ticket_types.c.available + bindparam("quantity")),
            [{"tt_id": tt_id, "quantity": quantities[tt_id]} for tt_id in sorted(quantities)],
        )


def sum_quantities(lines: Iterable[tuple[UUID, int]]) -> dict[UUID, int]:
    totals: dict[UUID, int] = {}
    for ticket_type_id, quantity in lines:
        totals[ticket_type_id] = totals.get(ticket_type_id, 0) + quantity
    return totals
