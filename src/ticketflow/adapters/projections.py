"""Projections: the read models (rm_* tables) as a function of the domain events.

Synchronous by choice: UnitOfWork.commit projects the events it appends, in the same transaction,
so a read model is never behind the writes (the buyer finds the hold in "my bookings" as soon as
the 201 arrives) and there is no second pipeline whose lag, retries and positions could drift.
Projecting asynchronously from the outbox would take a few statements off the write path, but make
every read eventually consistent. The rebuild replays the store through this same code.

Set-wise, because the hold batcher commits hundreds of `booking.held` at once: a batch is folded in
Python into its net change per row, then written with one INSERT and one or two executemany UPDATEs
per table, whatever its size (a hold batch: three statements).

Replaying in seq order gives the live result although concurrent transactions commit in another
order: counters move by deltas, which commute, and a row is overwritten only by events of its own
stream, whose versions commit one after another.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters import read_model_writes as writes
from ticketflow.adapters.tables import (
    rm_availability,
    rm_bookings,
    rm_event_sales,
    rm_ticket_type_sales,
)
from ticketflow.domain import events as ev
from ticketflow.domain.model import BookingStatus, EventStatus

Row = dict[str, Any]
_SHOWN_ON_SALES = ("name", "currency", "price_minor")  # ticket type fields the summary repeats


class Fact(Protocol):
    """What a projection reads of an event (a StoredEvent, or an Appended one)."""

    @property
    def type(self) -> str: ...
    @property
    def stream_id(self) -> UUID: ...
    @property
    def version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True)
class Appended:
    """A domain event being appended now: its data as the store will hold it, its seq unknown."""

    type: str
    stream_id: UUID
    version: int
    data: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def all(cls, events: Iterable[ev.DomainEvent], at: datetime) -> list[Appended]:
        return [cls(e.type, e.stream_id, e.version, e.data(), at) for e in events]


async def project(connection: AsyncConnection, facts: Sequence[Fact]) -> None:
    """Apply `facts`, in their order, to every read model."""
    projected = await Projected.of(connection, facts)
    await projected.write_rows(connection)
    await projected.write_counters(connection)


class Projected:
    """What some events change in the read models, written in two steps (read_model_writes)."""

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch

    @classmethod
    async def of(cls, connection: AsyncConnection, facts: Sequence[Fact]) -> Projected:
        batch = _Batch()
        for fact in facts:
            handler = _HANDLERS.get(fact.type)
            if handler is not None:
                handler(batch, fact)
        if batch.unpriced:  # confirmations stored before they carried their lines
            rows = await connection.execute(
                select(rm_bookings.c.booking_id, rm_bookings.c.lines).where(
                    rm_bookings.c.booking_id.in_(batch.unpriced)
                )
            )
            for row in rows:
                batch.move(row.lines, held=-1, sold=+1)
        return cls(batch)

    async def write_rows(self, connection: AsyncConnection, *, later: bool = False) -> None:
        batch = self._batch
        await writes.write_rows(connection, batch.new, batch.changed, batch.moved, later=later)

    async def write_counters(self, connection: AsyncConnection, *, later: bool = False) -> None:
        batch = self._batch
        await writes.write_counters(connection, batch.new, batch.changed, batch.moved, later=later)


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


class _Batch:
    """The net change of a run of events: new rows, overwritten columns, counter deltas."""

    def __init__(self) -> None:
        tables = (rm_event_sales, rm_ticket_type_sales, rm_availability, rm_bookings)
        self.new: dict[Table, dict[UUID, Row]] = {table: {} for table in tables}
        self.changed: dict[Table, dict[UUID, Row]] = {table: {} for table in tables}
        self.moved: dict[UUID, Counter[str]] = defaultdict(Counter)  # per ticket type
        self.unpriced: list[UUID] = []

    def set(self, table: Table, key: UUID, **values: Any) -> None:
        row = self.new[table].get(key)
        (row if row is not None else self.changed[table].setdefault(key, {})).update(values)

    def move(
        self, lines: Iterable[Row], *, held: int = 0, sold: int = 0, available: int = 0
    ) -> None:
        """Shift each line's tickets between the counters (+1 into one, -1 out of it)."""
        for line in lines:
            moved, quantity = self.moved[UUID(line["ticket_type_id"])], line["quantity"]
            moved["held"] += held * quantity
            moved["sold"] += sold * quantity
            moved["revenue_minor"] += sold * quantity * line["unit_price_minor"]
            moved["available"] += available * quantity

    def event_created(self, fact: Fact) -> None:
        self.new[rm_event_sales][fact.stream_id] = {
            "event_id": fact.stream_id,
            "organizer_id": UUID(fact.data["organizer_id"]),
            "title": fact.data["title"],
            "status": EventStatus.DRAFT.value,
        }

    def event_updated(self, fact: Fact) -> None:
        if "title" in fact.data["changes"]:
            self.set(rm_event_sales, fact.stream_id, title=fact.data["changes"]["title"])

    def event_status(self, fact: Fact, status: EventStatus) -> None:
        self.set(rm_event_sales, fact.stream_id, status=status.value)

    def ticket_type_added(self, fact: Fact) -> None:
        data, key = fact.data, fact.stream_id
        self.new[rm_ticket_type_sales][key] = {
            "ticket_type_id": key,
            "event_id": UUID(data["event_id"]),
            "name": data["name"],
            "currency": data["currency"],
            "price_minor": data["price_minor"],
            "held": 0,
            "sold": 0,
            "revenue_minor": 0,
        }
        self.new[rm_availability][key] = {
            "ticket_type_id": key,
            "event_id": UUID(data["event_id"]),
            "total": data["total"],
            "available": data["total"],
        }

    def ticket_type_updated(self, fact: Fact) -> None:
        changes, key = fact.data["changes"], fact.stream_id
        shown = {name: changes[name] for name in _SHOWN_ON_SALES if name in changes}
        if shown:
            self.set(rm_ticket_type_sales, key, **shown)
        if "total" in changes:  # `available` moves with it: see read_model_writes
            new = self.new[rm_availability].get(key)
            if new is not None:
                new["available"] += changes["total"] - new["total"]
            self.set(rm_availability, key, total=changes["total"])

    def booking_held(self, fact: Fact) -> None:
        data = fact.data
        self.new[rm_bookings][fact.stream_id] = {
            "booking_id": fact.stream_id,
            "user_id": UUID(data["user_id"]),
            "event_id": UUID(data["event_id"]),
            "status": BookingStatus.PENDING.value,
            "currency": data["currency"],
            "total_minor": data["total_minor"],
            "lines": data["lines"],
            "ticket_ids": [],
            "hold_expires_at": _when(data["hold_expires_at"]),
            # Events stored before `created_at` was recorded: their commit time stands in.
            "created_at": _when(data["created_at"]) if "created_at" in data else fact.occurred_at,
            "updated_at": fact.occurred_at,
            "version": fact.version,
        }
        self.move(data["lines"], held=+1, available=-1)

    def booking_status(self, fact: Fact, status: BookingStatus, **values: Any) -> None:
        self.set(
            rm_bookings,
            fact.stream_id,
            status=status.value,
            version=fact.version,
            updated_at=fact.occurred_at,
            **values,
        )

    def booking_released(self, fact: Fact, status: BookingStatus) -> None:
        self.booking_status(fact, status)
        self.move(fact.data["lines"], held=-1, available=+1)

    def booking_confirmed(self, fact: Fact) -> None:
        self.booking_status(fact, BookingStatus.CONFIRMED, ticket_ids=fact.data["ticket_ids"])
        lines = fact.data.get("lines")
        held = self.new[rm_bookings].get(fact.stream_id)
        if lines is None and held is not None:
            lines = held["lines"]
        if lines is None:
            self.unpriced.append(fact.stream_id)
        else:
            self.move(lines, held=-1, sold=+1)

    def booking_refunded(self, fact: Fact) -> None:
        self.booking_status(fact, BookingStatus.REFUNDED)
        self.move(fact.data["lines"], sold=-1, available=+1)


_HANDLERS: dict[str, Callable[[_Batch, Fact], None]] = {
    ev.EventCreated.type: _Batch.event_created,
    ev.EventUpdated.type: _Batch.event_updated,
    ev.EventPublished.type: partial(_Batch.event_status, status=EventStatus.PUBLISHED),
    ev.EventCancelled.type: partial(_Batch.event_status, status=EventStatus.CANCELLED),
    ev.TicketTypeAdded.type: _Batch.ticket_type_added,
    ev.TicketTypeUpdated.type: _Batch.ticket_type_updated,
    ev.TicketsHeld.type: _Batch.booking_held,
    ev.BookingCancelled.type: partial(_Batch.booking_released, status=BookingStatus.CANCELLED),
    ev.HoldExpired.type: partial(_Batch.booking_released, status=BookingStatus.EXPIRED),
    ev.BookingConfirmed.type: _Batch.booking_confirmed,
    ev.BookingRefunded.type: _Batch.booking_refunded,
}
