"""An event's sales over time: tickets sold per hour (or per day, over a long sale), for the
organizer's dashboard chart. One grouped query, whatever the number of tickets or types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import bookings, tickets

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Beyond this many hours the chart counts per day: a bar per hour would be too thin to read.
MOST_HOURLY_BARS = 48


@dataclass(frozen=True)
class SalesPeriod:
    starts_at: datetime
    tickets: int


def _hour_of(connection: AsyncConnection) -> Any:
    """The SQL expression of a ticket's issue time cut down to its hour (UTC)."""
    if connection.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", tickets.c.issued_at))
    return func.strftime("%Y-%m-%d %H:00:00", tickets.c.issued_at)  # SQLite keeps UTC text


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def tickets_sold_over_time(
    connection: AsyncConnection, event_id: UUID
) -> tuple[list[SalesPeriod], timedelta]:
    """Tickets issued (on confirmation) and still valid, per hour or per day with the empty
    periods in between, and which period it is. Refunded tickets are void: left out, so the
    bars add up to the dashboard's "sold"."""
    hour = _hour_of(connection).label("hour")
    query = (
        select(hour, func.count().label("tickets"))
        .select_from(tickets.join(bookings, bookings.c.id == tickets.c.booking_id))
        .where(bookings.c.event_id == event_id, tickets.c.voided_at.is_(None))
        .group_by(hour)
        .order_by(hour)
    )
    counted = {_as_utc(row.hour): row.tickets for row in await connection.execute(query)}
    return periods(counted)


def periods(per_hour: dict[datetime, int]) -> tuple[list[SalesPeriod], timedelta]:
    """Hourly counts as a gapless series of hours, or of days once it spans too many hours."""
    if not per_hour:
        return [], HOUR
    first, last = min(per_hour), max(per_hour)
    step = HOUR if (last - first) / HOUR < MOST_HOURLY_BARS else DAY
    counts: dict[datetime, int] = {}
    for moment, sold in per_hour.items():
        key = moment if step == HOUR else moment.replace(hour=0)
        counts[key] = counts.get(key, 0) + sold
    start = min(counts)
    series = []
    moment = start
    while moment <= max(counts):
        series.append(SalesPeriod(moment, counts.get(moment, 0)))
        moment += step
    return series, step
