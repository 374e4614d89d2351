"""The storefront's read side: upcoming published events, searched, in pages."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import events
from ticketflow.domain.model import EventStatus
from ticketflow.services.pagination import Page, decode_cursor, page_of
from ticketflow.services.queries import Row, with_ticket_types

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
