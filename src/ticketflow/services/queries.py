"""The read side: plain SQL straight into response shapes; no domain objects, no writes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import (
    booking_lines,
    bookings,
    events,
    rm_availability,
    ticket_types,
    tickets,
    users,
)
from ticketflow.domain.errors import NotFound, PermissionDenied
from ticketflow.domain.model import Actor, EventStatus, Role
from ticketflow.services.pagination import Page, decode_cursor, page_of

Row = dict[str, Any]

_TICKET_TYPE_COLUMNS = (
    ticket_types.c.id,
    ticket_types.c.event_id,
    ticket_types.c.name,
    ticket_types.c.price_minor,
    ticket_types.c.currency,
    ticket_types.c.total,
    ticket_types.c.available,
    ticket_types.c.max_per_booking,
    ticket_types.c.max_per_buyer,
)
_EVENT_COLUMNS = tuple(c for c in events.c if c.name != "version")
_BOOKING_COLUMNS = tuple(c for c in bookings.c if c.name != "version")


async def _rows(connection: AsyncConnection, query: Select[Any]) -> list[Row]:
    return [dict(row) for row in (await connection.execute(query)).mappings()]


async def with_ticket_types(connection: AsyncConnection, found: list[Row]) -> list[Row]:
    """`found` events, each with its ticket types (one query for them all), cheapest first."""
    by_event: dict[UUID, list[Row]] = defaultdict(list)
    if found:
        for row in await _rows(
            connection,
            select(*_TICKET_TYPE_COLUMNS)
            .where(ticket_types.c.event_id.in_([event["id"] for event in found]))
            .order_by(ticket_types.c.price_minor, ticket_types.c.id),
        ):
            by_event[row["event_id"]].append(row)
    return [{**event, "ticket_types": by_event[event["id"]]} for event in found]


async def list_events(
    connection: AsyncConnection,
    *,
    cursor: str | None,
    limit: int,
    organized_by: Actor | None = None,
) -> Page[Row]:
    """Published events by start time; or every event `organized_by` this organizer."""
    query = select(*_EVENT_COLUMNS).order_by(events.c.starts_at, events.c.id).limit(limit + 1)
    if organized_by is None:
        query = query.where(events.c.status == EventStatus.PUBLISHED.value)
    elif organized_by.role in (Role.MANAGER, Role.ADMIN):
        query = query.where(events.c.organizer_id == organized_by.user_id)
    else:
        raise PermissionDenied("Only organizers have events of their own.")
    if cursor:
        starts_at, event_id = decode_cursor(cursor, datetime, UUID)
        query = query.where(tuple_(events.c.starts_at, events.c.id) > (starts_at, event_id))
    page = page_of(await _rows(connection, query), limit, lambda e: (e["starts_at"], e["id"]))
    return Page(await with_ticket_types(connection, page.items), page.next_cursor)


async def event_detail(connection: AsyncConnection, event_id: UUID, actor: Actor | None) -> Row:
    found = await event_row(connection, event_id)
    if found is None or not visible(found, actor):
        raise NotFound("No such event.")
    return found


async def event_row(connection: AsyncConnection, event_id: UUID) -> Row | None:
    """An event with its ticket types, whoever asks (check `visible` before showing it)."""
    found = await _rows(connection, select(*_EVENT_COLUMNS).where(events.c.id == event_id))
    return (await with_ticket_types(connection, found))[0] if found else None


def visible(event: Row, actor: Actor | None) -> bool:
    """Drafts are their organizer's (and admins') business; anything else is public."""
    return event["status"] != EventStatus.DRAFT.value or bool(
        actor and actor.may_manage(event["organizer_id"])
    )


async def availability(connection: AsyncConnection, event_id: UUID) -> dict[UUID, int]:
    """Tickets left per ticket type of an event, as of the last commit: the availability read
    model, projected in the transaction of every hold and release (adapters/projections.py)."""
    rows = await connection.execute(
        select(rm_availability.c.ticket_type_id, rm_availability.c.available).where(
            rm_availability.c.event_id == event_id
        )
    )
    return {row.ticket_type_id: row.available for row in rows}


async def _with_lines(connection: AsyncConnection, found: list[Row]) -> list[Row]:
    by_booking: dict[UUID, list[Row]] = defaultdict(list)
    if found:
        query = (
            select(booking_lines)
            .where(booking_lines.c.booking_id.in_([booking["id"] for booking in found]))
            .order_by(booking_lines.c.ticket_type_id)
        )
        for row in await _rows(connection, query):
            by_booking[row["booking_id"]].append(row)
    return [{**booking, "lines": by_booking[booking["id"]]} for booking in found]


async def booking_detail(connection: AsyncConnection, booking_id: UUID, actor: Actor) -> Row:
    return (await _with_lines(connection, [await _booking_seen_by(connection, booking_id, actor)]))[
        0
    ]


async def _booking_seen_by(connection: AsyncConnection, booking_id: UUID, actor: Actor) -> Row:
    """The booking (without its lines) if `actor` may see it; NotFound otherwise."""
    found = await _rows(
        connection,
        select(*_BOOKING_COLUMNS, events.c.organizer_id)
        .join(events, events.c.id == bookings.c.event_id)
        .where(bookings.c.id == booking_id),
    )
    if not found or not actor.may_see_booking(found[0]["user_id"], found[0]["organizer_id"]):
        raise NotFound("No such booking.")
    return found[0]


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.role,
    users.c.disabled_at.is_not(None).label("disabled"),
    users.c.created_at,
)


async def user(connection: AsyncConnection, user_id: UUID) -> Row:
    found = await _rows(connection, select(*_USER_COLUMNS).where(users.c.id == user_id))
    if not found:
        raise NotFound("No such user.")
    return found[0]


async def list_users(
    connection: AsyncConnection,
    actor: Actor,
    *,
    cursor: str | None,
    limit: int,
    email_contains: str = "",
) -> Page[Row]:
    if actor.role is not Role.ADMIN:
        raise PermissionDenied("Only admins list accounts.")
    query = select(*_USER_COLUMNS).order_by(users.c.id).limit(limit + 1)
    if email_contains:  # e-mails are stored lower-cased; % and _ are taken literally
        query = query.where(users.c.email.contains(email_contains.lower(), autoescape=True))
    if cursor:
        (after,) = decode_cursor(cursor, UUID)
        query = query.where(users.c.id > after)
    return page_of(await _rows(connection, query), limit, lambda u: (u["id"],))


# One statement, built once: who may see the booking, with its tickets (a row of NULLs for a
# booking without any). Two statements built per request were most of the read's CPU.
_TICKET_FIELDS = tuple(column.name for column in tickets.c)
_TICKETS_OF_BOOKING = Direct(
    select(bookings.c.user_id, events.c.organizer_id, *tickets.c)
    .select_from(
        bookings.join(events, events.c.id == bookings.c.event_id).outerjoin(
            tickets, tickets.c.booking_id == bookings.c.id
        )
    )
    .where(bookings.c.id == bindparam("booking_id"))
    .order_by(tickets.c.id)
)


async def tickets_of_booking(
    connection: AsyncConnection, booking_id: UUID, actor: Actor
) -> list[Row]:
    """The booking's issued tickets with their codes, for whoever may see the booking: one
    statement (api/deps.py `OneStatementRead`)."""
    found = await _TICKETS_OF_BOOKING.rows(connection, {"booking_id": booking_id})
    if not found or not actor.may_see_booking(found[0].user_id, found[0].organizer_id):
        raise NotFound("No such booking.")
    return [dict(zip(_TICKET_FIELDS, row[2:], strict=True)) for row in found if row.id is not None]
