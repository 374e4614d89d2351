"""Queries served from the read models (rm_*, kept by adapters/projections.py): "my bookings" with
ticket details and an event's sales summary (availability: queries.availability). Plain SQL into
response shapes, like queries.py."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import (
    rm_availability,
    rm_bookings,
    rm_event_sales,
    rm_ticket_type_sales,
)
from ticketflow.domain.errors import NotFound
from ticketflow.domain.model import Actor
from ticketflow.services.pagination import Page, decode_cursor, page_of

Row = dict[str, Any]


async def my_bookings(
    connection: AsyncConnection, actor: Actor, *, cursor: str | None, limit: int
) -> Page[Row]:
    """The caller's own bookings, newest first (ids are time-ordered UUID v7), each with its
    event's title, its ticket types' names and the ids of the tickets it was issued."""
    query = (
        select(rm_bookings)
        .where(rm_bookings.c.user_id == actor.user_id)
        .order_by(rm_bookings.c.booking_id.desc())
        .limit(limit + 1)
    )
    if cursor:
        (after,) = decode_cursor(cursor, UUID)
        query = query.where(rm_bookings.c.booking_id < after)
    found = [dict(row) for row in (await connection.execute(query)).mappings()]
    page = page_of(found, limit, lambda booking: (booking["booking_id"],))
    event_ids = {booking["event_id"] for booking in page.items}
    titles = await _column_by_key(
        connection, rm_event_sales.c.event_id, rm_event_sales.c.title, event_ids
    )
    type_ids = {UUID(line["ticket_type_id"]) for b in page.items for line in b["lines"]}
    names = await _column_by_key(
        connection, rm_ticket_type_sales.c.ticket_type_id, rm_ticket_type_sales.c.name, type_ids
    )
    return Page([_my_booking(b, titles, names) for b in page.items], page.next_cursor)


def _my_booking(row: Row, titles: dict[UUID, Any], names: dict[UUID, Any]) -> Row:
    lines = [
        {
            "ticket_type_id": UUID(line["ticket_type_id"]),
            "ticket_type_name": names.get(UUID(line["ticket_type_id"])),
            "quantity": line["quantity"],
            "unit_price_minor": line["unit_price_minor"],
        }
        for line in row["lines"]
    ]
    return {
        **{name: value for name, value in row.items() if name not in ("booking_id", "version")},
        "id": row["booking_id"],
        "event_title": titles.get(row["event_id"]),
        "lines": sorted(lines, key=lambda line: line["ticket_type_id"]),
        "ticket_ids": [UUID(ticket_id) for ticket_id in row["ticket_ids"]],
    }


async def _column_by_key(
    connection: AsyncConnection, key: Any, column: Any, keys: set[UUID]
) -> dict[UUID, Any]:
    if not keys:
        return {}
    rows = await connection.execute(select(key, column).where(key.in_(keys)))
    return {row[0]: row[1] for row in rows}


async def sales_summary(connection: AsyncConnection, event_id: UUID, actor: Actor) -> Row:
    """Per ticket type: sold (confirmed), held (pending), revenue (confirmed, net of refunds)
    and availability. For the event's organizer and admins; to anyone else it does not exist."""
    query = select(rm_event_sales).where(rm_event_sales.c.event_id == event_id)
    event = (await connection.execute(query)).mappings().one_or_none()
    if event is None or not actor.may_manage(event["organizer_id"]):
        raise NotFound("No such event.")
    rows = await connection.execute(
        select(
            rm_ticket_type_sales,
            rm_availability.c.total,
            rm_availability.c.available,
        )
        .join(
            rm_availability,
            rm_availability.c.ticket_type_id == rm_ticket_type_sales.c.ticket_type_id,
        )
        .where(rm_ticket_type_sales.c.event_id == event_id)
        .order_by(rm_ticket_type_sales.c.price_minor, rm_ticket_type_sales.c.ticket_type_id)
    )
    types = [dict(row) for row in rows.mappings()]
    revenue: dict[str, int] = {}
    for row in types:
        revenue[row["currency"]] = revenue.get(row["currency"], 0) + row["revenue_minor"]
    return {
        **dict(event),
        "ticket_types": types,
        "sold": sum(row["sold"] for row in types),
        "held": sum(row["held"] for row in types),
        "revenue": [
            {"currency": currency, "revenue_minor": amount}
            for currency, amount in sorted(revenue.items())
        ],
    }
