"""Bookings and their lines; bulk release of holds for the sweeper and event cancellation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    Uuid,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import booking_lines, bookings, users
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Booking, BookingLine, BookingStatus

PENDING = BookingStatus.PENDING.value
# What a buyer's cap counts: held and paid. Pending holds past their expiry still count until
# the sweeper releases them, since a payment may still confirm them until then.
_COUNTED = (PENDING, BookingStatus.CONFIRMED.value)

# A booking that just left `pending`: its id, its new stream version and its lines.
Released = tuple[UUID, int, list[BookingLine]]

# Built once and run directly: a payment reads a booking twice and moves its status once, and
# building a statement cost about as much CPU as running it (110 against 62 us a select), and
# SQLAlchemy's execution of it twice asyncpg's (adapters/direct_sql.py, bench/README.md).
WITH_LINES = (  # extended by the payments' read of a booking with its payment
    select(
        bookings,
        booking_lines.c.ticket_type_id,
        booking_lines.c.quantity,
        booking_lines.c.unit_price_minor,
    )
    .outerjoin(booking_lines, booking_lines.c.booking_id == bookings.c.id)
    .where(bookings.c.id == bindparam("id"))
    .order_by(booking_lines.c.ticket_type_id)
)
_WITH_LINES = Direct(WITH_LINES)
_SAVE_STATUS = Direct(  # bind names apart from the columns' (SQLAlchemy reserves those in a SET)
    update(bookings)
    .where(bookings.c.id == bindparam("b_id"), bookings.c.version == bindparam("b_read_version"))
    .values(
        status=bindparam("b_status"), version=bindparam("b_version"), updated_at=bindparam("b_now")
    )
)


def booking_of(rows: Sequence[Row[Any]]) -> Booking | None:
    """The booking in the rows of WITH_LINES (or of a statement that extends it); None if none."""
    if not rows:
        return None
    row = rows[0]
    return Booking(
        id=row.id,
        user_id=row.user_id,
        event_id=row.event_id,
        currency=row.currency,
        hold_expires_at=row.hold_expires_at,
        created_at=row.created_at,
        lines=[
            BookingLine(line.ticket_type_id, line.quantity, line.unit_price_minor)
            for line in rows
            if line.ticket_type_id is not None
        ],
        status=BookingStatus(row.status),
        version=row.version,
    )


# The buyers of a batch as one array on PostgreSQL: one statement text whatever their number,
# prepared once, where an IN list of N parameters is a new statement (parsed and planned) for
# every batch size. SQLite takes the list (and locks nothing: its writers take turns).
_BUYERS = bindparam("ids", type_=ARRAY(Uuid))
_LOCK_BUYERS = Direct(
    select(users.c.id)
    .where(users.c.id == any_(_BUYERS))
    .order_by(users.c.id)
    .with_for_update(key_share=True)
)
_LOCK_BUYERS_LISTED = Direct(
    select(users.c.id).where(users.c.id.in_(bindparam("ids", expanding=True)))
)


def _holdings_of(buyers: ColumnElement[bool], counted: ColumnElement[bool]) -> Direct:
    return Direct(
        select(
            bookings.c.user_id,
            booking_lines.c.ticket_type_id,
            func.sum(booking_lines.c.quantity).label("held"),
        )
        .join(booking_lines, booking_lines.c.booking_id == bookings.c.id)
        .where(buyers, bookings.c.event_id == bindparam("event_id"), counted)
        .group_by(bookings.c.user_id, booking_lines.c.ticket_type_id)
    )


# The statuses as one array too on PostgreSQL: a literal IN list is expanded at each execution,
# which a statement run directly (adapters/direct_sql.py) does not do.
_HOLDINGS = _holdings_of(
    bookings.c.user_id == any_(_BUYERS),
    bookings.c.status == any_(literal(list(_COUNTED), ARRAY(String))),
)
_HOLDINGS_LISTED = _holdings_of(
    bookings.c.user_id.in_(bindparam("ids", expanding=True)), bookings.c.status.in_(_COUNTED)
)
_INSERT_BOOKINGS = Direct(insert(bookings))
_INSERT_LINES = Direct(insert(booking_lines))


class BookingRepository:
    def __init__(self, connection: AsyncConnection, *, later: bool = False) -> None:
        self._connection = connection
        self._later = later  # inserts queued (direct_sql.py), for a unit of work's commit

    async def add(self, *new: Booking) -> None:
        """Insert bookings and their lines: two statements, however many bookings."""
        await _INSERT_BOOKINGS.run_many(
            self._connection,
            [
                {
                    "id": booking.id,
                    "user_id": booking.user_id,
                    "event_id": booking.event_id,
                    "status": booking.status.value,
                    "currency": booking.currency,
                    "total_minor": booking.total_minor,
                    "hold_expires_at": booking.hold_expires_at,
                    "version": booking.version,
                    "created_at": booking.created_at,
                    "updated_at": booking.created_at,
                }
                for booking in new
            ],
            later=self._later,
        )
        await _INSERT_LINES.run_many(
            self._connection,
            [
                {
                    "booking_id": booking.id,
                    "ticket_type_id": line.ticket_type_id,
                    "quantity": line.quantity,
                    "unit_price_minor": line.unit_price_minor,
                }
                for booking in new
                for line in booking.lines
            ],
            later=self._later,
        )

    async def holdings(
        self, buyers: Collection[UUID], event_id: UUID
    ) -> dict[UUID, dict[UUID, int]]:
        """The tickets each buyer holds or owns of the event, per ticket type; their accounts
        are locked first, until this transaction ends, so two holds of one buyer count in turn
        (in id order, so holds of several buyers never deadlock; NO KEY: the bookings being
        inserted meanwhile only key-share the account, for their foreign key). The count is a
        statement of its own, after the lock: it then sees what the last holder committed."""
        ids = sorted(buyers)
        on_postgresql = self._connection.dialect.name == "postgresql"
        await (_LOCK_BUYERS if on_postgresql else _LOCK_BUYERS_LISTED).rows(
            self._connection, {"ids": ids}
        )
        rows = await (_HOLDINGS if on_postgresql else _HOLDINGS_LISTED).rows(
            self._connection, {"ids": ids, "event_id": event_id}
        )
        held: dict[UUID, dict[UUID, int]] = {buyer: {} for buyer in buyers}
        for row in rows:
            held[row.user_id][row.ticket_type_id] = int(row.held)
        return held

    async def get(self, booking_id: UUID) -> Booking | None:
        return booking_of(await _WITH_LINES.rows(self._connection, {"id": booking_id}))

    async def save_status(self, booking: Booking, now: datetime) -> None:
        """Optimistic: the status moves only from the version that was read."""
        saved = await _SAVE_STATUS.run(
            self._connection,
            {
                "b_id": booking.id,
                "b_read_version": booking.version - 1,
                "b_status": booking.status.value,
                "b_version": booking.version,
                "b_now": now,
            },
        )
        if saved != 1:
            raise Conflict("The booking changed at the same time; reload and try again.")

    async def expire_due(self, now: datetime, limit: int) -> list[Released]:
        """Expire up to `limit` pending holds whose time is up."""
        return await self._release_pending(
            bookings.c.hold_expires_at <= now, BookingStatus.EXPIRED, now, limit
        )

    async def cancel_pending_of_event(self, event_id: UUID, now: datetime) -> list[Released]:
        return await self._release_pending(
            bookings.c.event_id == event_id, BookingStatus.CANCELLED, now, None
        )

    async def _release_pending(
        self,
        condition: ColumnElement[bool],
        to: BookingStatus,
        now: datetime,
        limit: int | None,
    ) -> list[Released]:
        """Move pending bookings matching `condition` to `to`: (id, new version, lines) of each.

        The status test in the UPDATE itself makes a hold leave `pending` once, however many
        sweepers race; SKIP LOCKED (PostgreSQL) lets them split the work instead of queueing.
        """
        due = (
            select(bookings.c.id)
            .where(bookings.c.status == PENDING, condition)
            .order_by(bookings.c.hold_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        released = (
            await self._connection.execute(
                update(bookings)
                .where(bookings.c.id.in_(due.scalar_subquery()), bookings.c.status == PENDING)
                .values(status=to.value, version=bookings.c.version + 1, updated_at=now)
                .returning(bookings.c.id, bookings.c.version)
            )
        ).all()
        if not released:
            return []
        lines = await self._lines_of([row.id for row in released])
        return [(row.id, row.version, lines[row.id]) for row in released]

    async def _lines_of(self, booking_ids: list[UUID]) -> dict[UUID, list[BookingLine]]:
        rows = await self._connection.execute(
            select(booking_lines)
            .where(booking_lines.c.booking_id.in_(booking_ids))
            .order_by(booking_lines.c.ticket_type_id)
        )
        found: dict[UUID, list[BookingLine]] = defaultdict(list)
        for row in rows:
            found[row.booking_id].append(
                BookingLine(row.ticket_type_id, row.quantity, row.unit_price_minor)
            )
        return found
