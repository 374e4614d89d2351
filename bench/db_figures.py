"""What the database says around a long run, read from the bench's own connection: its size and
its tables' (before and after), and the outbox relay's lag, sampled while the load runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MB = 1024 * 1024
TABLES_SHOWN = 8
CATCH_UP_POLL = 0.5  # seconds between looks at the relay once the load has ended

TABLE_SIZES = """
SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
"""
# The relay publishes the event store in seq order and stores how far it got (adapters/outbox.py):
# what lies past its position is not published yet. Read-only; counted, so a relay far behind
# costs this query a scan of what it has not published.
RELAY_LAG = """
SELECT COUNT(*) AS unpublished,
       EXTRACT(EPOCH FROM clock_timestamp() - MIN(occurred_at)) AS oldest_age_s
FROM domain_events
WHERE seq > COALESCE((SELECT last_seq FROM outbox_positions WHERE name = :position), 0)
"""


@dataclass(frozen=True)
class Sizes:
    database: int  # bytes
    tables: dict[str, int]  # bytes, indexes and TOAST included


async def sizes(engine: AsyncEngine) -> Sizes:
    async with engine.connect() as connection:
        database = await connection.scalar(text("SELECT pg_database_size(current_database())"))
        rows = (await connection.execute(text(TABLE_SIZES))).all()
    return Sizes(int(database or 0), {str(row.name): int(row.bytes) for row in rows})


def growth(before: Sizes, after: Sizes, bookings: int) -> dict[str, Any]:
    """The database's growth, whole and for the tables that grew most, also per million
    bookings."""
    per_million = 1_000_000 / bookings if bookings else 0.0

    def figures(was: int, now: int) -> dict[str, float]:
        return {
            "mb_before": round(was / MB, 1),
            "mb_after": round(now / MB, 1),
            "mb_growth": round((now - was) / MB, 1),
            "mb_per_million_bookings": round((now - was) / MB * per_million, 1),
        }

    def grown(name: str) -> tuple[int, int]:
        return after.tables[name] - before.tables.get(name, 0), after.tables[name]

    grew = [name for name in after.tables if grown(name)[0] > 0]
    biggest = sorted(grew, key=grown, reverse=True)[:TABLES_SHOWN]
    return {
        "bookings": bookings,
        "database": figures(before.database, after.database),
        "tables": {
            name: figures(before.tables.get(name, 0), after.tables[name]) for name in biggest
        },
    }


@dataclass(frozen=True)
class RelayLag:
    at: float  # monotonic
    unpublished: int  # events stored and not yet published
    oldest_age_s: float | None  # how long the oldest of them has waited; None if none

    def as_dict(self, since: float) -> dict[str, Any]:
        return {
            "t_s": round(self.at - since, 1),
            "unpublished": self.unpublished,
            "oldest_age_s": round(self.oldest_age_s, 2) if self.oldest_age_s is not None else None,
        }


async def relay_lag(engine: AsyncEngine, position: str) -> RelayLag:
    async with engine.connect() as connection:
        row = (await connection.execute(text(RELAY_LAG), {"position": position})).one()
    age = float(row.oldest_age_s) if row.oldest_age_s is not None else None
    return RelayLag(time.monotonic(), int(row.unpublished), age)


@contextlib.asynccontextmanager
async def sampling_relay_lag(
    engine: AsyncEngine, position: str, period: float
) -> AsyncIterator[list[RelayLag]]:
    """While inside: the relay's lag sampled every `period` seconds (from entering: one sample
    at once), on a fixed beat so that every window of that length gets one."""
    samples: list[RelayLag] = []

    async def sample() -> None:
        origin = time.monotonic()
        for beat in itertools.count():
            await asyncio.sleep(max(0.0, origin + beat * period - time.monotonic()))
            samples.append(await relay_lag(engine, position))

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def relay_catch_up(engine: AsyncEngine, position: str, patience: float) -> float | None:
    """Seconds until the relay has published everything stored, or None after `patience`."""
    start = time.monotonic()
    while (await relay_lag(engine, position)).unpublished:
        if time.monotonic() - start > patience:
            return None
        await asyncio.sleep(CATCH_UP_POLL)  # poll interval: the relay moves on its own
    return round(time.monotonic() - start, 2)
