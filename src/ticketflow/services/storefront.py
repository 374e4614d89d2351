"""The storefront's read side: upcoming published events searched and paged, what a buyer
holds at an event, the tickets of their bookings and what their refunds depend on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import (
    booking_lines,
    bookings,
    check_ins,
    events,
    ticket_types,
    tickets,
)
from ticketflow.domain.model import BookingStatus, EventStatus
from ticketflow.services.pagination import Page, decode_cursor, page_of
from ticketflow.services.queries import Row, with_ticket_types

# What a buyer's caps count: held and bought (domain/model.py Event.check_buyer_limits).
COUNTED_BY_CAPS = (BookingStatus.PENDING.value, BookingStatus.CONFIRMED.value)
_COLUMNS = (
    events.c.id,
    events.c.title,
    events.c.venue,
    events.c.starts_at,
    events.c.ends_at,
    events.c.status,
)


def _like(text: str) -> str:
    """`text` as a case-insensitive substring pattern, its own % and _ taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def upcoming_events(
    connection: AsyncConnection,
    *,
    now: datetime,
    text: str = "",
    on_date: date | None = None,
    cursor: str | None,
    limit: int,
) -> Page[Row]:
    """Published events not over yet by start time, with their ticket types; `text` found in
    the title or the venue; `on_date`: starting that day (UTC). Two queries, whatever the page."""
    query = (
        select(*_COLUMNS)
        .where(events.c.status == EventStatus.PUBLISHED.value, events.c.ends_at > now)
        .order_by(events.c.starts_at, events.c.id)
        .limit(limit + 1)
    )
    if text.strip():
        pattern = _like(text.strip())
        query = query.where(
            or_(
                func.lower(events.c.title).like(pattern, escape="\\"),
                func.lower(events.c.venue).like(pattern, escape="\\"),
            )
        )
    if on_date is not None:
        day = datetime.combine(on_date, time(), tzinfo=now.tzinfo)
        query = query.where(events.c.starts_at >= day, events.c.starts_at < day + timedelta(1))
    if cursor:
        starts_at, event_id = decode_cursor(cursor, datetime, UUID)
        query = query.where(tuple_(events.c.starts_at, events.c.id) > (starts_at, event_id))
    found = [dict(row) for row in (await connection.execute(query)).mappings()]
    page = page_of(found, limit, lambda e: (e["starts_at"], e["id"]))
    return Page(await with_ticket_types(connection, page.items), page.next_cursor)


async def holdings(connection: AsyncConnection, user_id: UUID, event_id: UUID) -> dict[UUID, int]:
    """Tickets per ticket type the buyer holds or owns at the event (what its caps count)."""
    rows = await connection.execute(
        select(booking_lines.c.ticket_type_id, func.sum(booking_lines.c.quantity))
        .join(bookings, bookings.c.id == booking_lines.c.booking_id)
        .where(
            bookings.c.user_id == user_id,
            bookings.c.event_id == event_id,
            bookings.c.status.in_(COUNTED_BY_CAPS),
        )
        .group_by(booking_lines.c.ticket_type_id)
    )
    return {ticket_type_id: int(held) for ticket_type_id, held in rows}


async def tickets_of_bookings(
    connection: AsyncConnection, booking_ids: list[UUID]
) -> dict[UUID, list[Row]]:
    """The issued tickets of each of `booking_ids` (already checked to be the reader's), in one
    query, with their ticket type's name."""
    by_booking: dict[UUID, list[Row]] = {booking_id: [] for booking_id in booking_ids}
    if booking_ids:
        rows = await connection.execute(
            select(tickets, ticket_types.c.name.label("ticket_type_name"))
            .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
            .where(tickets.c.booking_id.in_(booking_ids))
            .order_by(tickets.c.id)
        )
        for row in rows.mappings():
            by_booking[row["booking_id"]].append(dict(row))
    return by_booking


async def refund_terms(connection: AsyncConnection, booking_rows: list[Row]) -> dict[UUID, Row]:
    """What the buyer's own refund of each booking depends on (domain/refund_policy.py): its
    event's `starts_at` and `refund_deadline`, and whether a ticket of it was `checked_in`.
    Two queries, whatever the number of bookings."""
    if not booking_rows:
        return {}
    event_ids = {row["event_id"] for row in booking_rows}
    booking_ids = [row["id"] for row in booking_rows]
    terms = {
        row.id: row
        for row in await connection.execute(
            select(events.c.id, events.c.starts_at, events.c.refund_deadline).where(
                events.c.id.in_(event_ids)
            )
        )
    }
    admitted = set(
        await connection.scalars(
            select(tickets.c.booking_id)
            .join(check_ins, check_ins.c.ticket_id == tickets.c.id)
            .where(tickets.c.booking_id.in_(booking_ids))
            .distinct()
        )
    )
    return {
        row["id"]: {
            "starts_at": terms[row["event_id"]].starts_at,
            "refund_deadline": terms[row["event_id"]].refund_deadline,
            "checked_in": row["id"] in admitted,
        }
        for row in booking_rows
    }
