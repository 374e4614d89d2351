"""Rebuilding the read models: empty them and replay the whole event store through the projections,
in seq order, batch by batch (`ticketflow projections rebuild`; `migrate` after revision 0004).

All in one transaction. Writers keep projecting their own events while it runs, so they must not
touch a half-built model, nor have their events replayed as well as projected: the read models are
locked against writes (in the order writers take them, so nobody waits in a circle) until the
rebuild commits, and a writer projects before it appends, so its events are not in the store for
the replay to find. Writes that change a read model wait for the rebuild (on SQLite every write
does); reads go on, and see the old models until the new ones commit.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters import event_store, projections
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.read_model_writes import READ_MODELS
from ticketflow.adapters.tables import domain_events, rm_event_sales
from ticketflow.domain.events import EventCreated

Progress = Callable[[int, int], None]  # (events replayed, events in the store)


async def rebuild_read_models(
    engine: AsyncEngine, *, batch_size: int = 2000, progress: Progress | None = None
) -> int:
    """Replace every read model by a replay of the event store; the number of events replayed."""
    async with engine.connect() as connection:
        await connection.execution_options(**WRITE)
        async with connection.begin():
            await _empty(connection)
            total = await connection.scalar(select(func.count()).select_from(domain_events)) or 0
            replayed = after = 0
            while batch := await event_store.read_after(connection, after, batch_size):
                await projections.project(connection, batch)
                after, replayed = batch[-1].seq, replayed + len(batch)
                if progress is not None:
                    progress(replayed, max(total, replayed))
    return replayed


async def rebuild_if_missing(engine: AsyncEngine) -> int | None:
    """Rebuild when the read models are empty but the store is not (a database that was upgraded
    to revision 0004, which creates them empty); the number of events replayed, or None."""
    async with engine.connect() as connection:
        has_models = await connection.scalar(select(rm_event_sales.c.event_id).limit(1))
        has_events = await connection.scalar(
            select(domain_events.c.seq).where(domain_events.c.type == EventCreated.type).limit(1)
        )
    if has_models is not None or has_events is None:
        return None
    return await rebuild_read_models(engine)


async def _empty(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE locked all writers out
        # EXCLUSIVE, not ACCESS EXCLUSIVE (nor TRUNCATE, which takes it): reads carry on.
        names = ", ".join(table.name for table in READ_MODELS)
        await connection.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    for table in READ_MODELS:
        await connection.execute(delete(table))
