"""Autovacuum's analyzing, done by the bench: this machine's PostgreSQL runs with autovacuum off
(DESIGN.md), production keeps it on.

Without it the planner keeps whatever statistics a table had when the run began, and an
`ANALYZE` of a table that was empty then is the worst of them: PostgreSQL takes the table for
empty for good (a table never analyzed gets the benefit of the doubt, ten pages), so the
foreign-key checks a connection prepared early go on scanning the whole parent table for every
row inserted (each booking line scanned every booking: PostgreSQL's CPU grew with the bookings
table, bench/README.md). Production never analyzes an empty table (autovacuum waits for 50 rows
changed), and analyzes again as a table grows; so does this: `analyze_grown` at autovacuum's
default thresholds, and `analyzing` every few seconds for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.background import in_background

# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor, PostgreSQL's defaults.
THRESHOLD_ROWS = 50
SCALE_FACTOR = 0.1
# Production's launcher visits a database once a minute; a run's phases last seconds, and a
# fresh database's tables grow from nothing, so the stand-in looks more often.
EVERY_SECONDS = 5.0

_DUE = text("""
SELECT format('%I.%I', s.schemaname, s.relname)
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.n_live_tup > 0
  AND s.n_mod_since_analyze > :rows + :scale * greatest(c.reltuples, 0)
ORDER BY s.relname
""")


async def analyze_grown(
    connection: AsyncConnection, rows: int = THRESHOLD_ROWS, scale: float = SCALE_FACTOR
) -> list[str]:
    """ANALYZE the tables autovacuum would analyze now, by its rule of `rows` + `scale` x the
    table's rows changed since the last time (never an empty one); their names."""
    found = await connection.execute(_DUE, {"rows": rows, "scale": scale})
    due = list(found.scalars())
    if due:
        await connection.execute(text(f"ANALYZE {', '.join(due)}"))
    await connection.commit()
    return due


@contextlib.asynccontextmanager
async def analyzing(engine: AsyncEngine, every: float = EVERY_SECONDS) -> AsyncIterator[None]:
    """`analyze_grown` every `every` seconds, on a connection of its own, while the block runs."""

    async def loop() -> None:
        async with engine.connect() as connection:
            while True:
                await analyze_grown(connection)
                await asyncio.sleep(every)  # a pace, not a synchronisation

    async with in_background(loop()):
        yield
