"""Reading the event store as an outbox: stored positions (the relay's, in-process consumers'), and
the committed events after one, in seq order, never passing a seq that may still commit.

The gap. Transactions draw seqs when they append and commit a moment later, not necessarily in
that order: seq 11 can be visible while seq 10's transaction is still running. A reader that
moved its position to 11 would never see 10. So a reader stops at the first hole below the newest
seq it sees, and passes it only once the hole is settled: every transaction that was running when
the hole was first seen has ended. Then each seq of the hole either committed (and is read now)
or never will (its transaction rolled back). PostgreSQL tells exactly: the snapshot taken with the
read lists the running transactions (`pg_current_snapshot()`), and pg_stat_activity shows which of
this database's still run. This relies on a transaction having its id before it draws a seq; ours
always has, since the unit of work writes the change (and its projections) before it appends.
No timeout guesses "long enough". On SQLite writers take turns, so a seq is visible before the
next one is drawn and holes never occur.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.tables import domain_events, outbox_positions

# Transactions of this database, listed as running in `snapshot`, that still run. Other
# databases' transactions share the id space but can't hold our seqs, so they are not waited on
# (a backend shows its id as a 32-bit xid: the snapshot's 64-bit ones are compared modulo 2^32).
_STILL_RUNNING = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND backend_xid IS NOT NULL"
    " AND CAST(CAST(backend_xid AS text) AS bigint) IN ("
    "   SELECT CAST(CAST(running.xid AS text) AS bigint) % 4294967296"
    "   FROM pg_snapshot_xip(CAST(CAST(:snapshot AS text) AS pg_snapshot)) AS running(xid))"
)


async def create_position(connection: AsyncConnection, name: str, now: datetime) -> bool:
    """Store the position `name` at 0 unless it exists; whether this created it. Commit it
    before claiming it: a claim can't skip a row whose insert has not committed, it waits."""
    try:
        async with connection.begin_nested():
            await connection.execute(
                insert(outbox_positions).values(name=name, last_seq=0, updated_at=now)
            )
    except IntegrityError:
        return False
    return True


async def claim_position(connection: AsyncConnection, name: str) -> int | None:
    """Lock the position `name` for this transaction and return it; None if another transaction
    holds it (PostgreSQL: SKIP LOCKED; on SQLite the claim runs in a write transaction, BEGIN
    IMMEDIATE, whose holder is the only writer anyway) or it was never created."""
    found = await connection.scalar(
        select(outbox_positions.c.last_seq)
        .where(outbox_positions.c.name == name)
        .with_for_update(skip_locked=True)
    )
    return None if found is None else int(found)


async def read_position(connection: AsyncConnection, name: str) -> int:
    """The position `name`, without locking it (0 if it was never stored)."""
    found = await connection.scalar(
        select(outbox_positions.c.last_seq).where(outbox_positions.c.name == name)
    )
    return int(found or 0)


async def anything_after_position(connection: AsyncConnection, name: str) -> bool:
    """Whether any event is stored past the position `name` (or it was never stored)."""
    position = select(outbox_positions.c.last_seq).where(outbox_positions.c.name == name)
    after = func.coalesce(position.scalar_subquery(), 0)
    found = await connection.scalar(
        select(domain_events.c.seq).where(domain_events.c.seq > after).limit(1)
    )
    return found is not None


async def events_after_position(connection: AsyncConnection, name: str) -> int:
    """How many seqs the newest event is past the position `name`: a reader's lag (cheap: the
    newest seq comes from the primary key's index)."""
    newest = select(func.coalesce(func.max(domain_events.c.seq), 0)).scalar_subquery()
    position = (
        select(outbox_positions.c.last_seq).where(outbox_positions.c.name == name).scalar_subquery()
    )
    lag = await connection.scalar(select(newest - func.coalesce(position, 0)))
    return max(0, int(lag or 0))


async def advance_position(
    connection: AsyncConnection, name: str, last_seq: int, now: datetime
) -> None:
    """Move the position forward (never back: a late, slower reader changes nothing)."""
    await connection.execute(
        update(outbox_positions)
        .where(outbox_positions.c.name == name, outbox_positions.c.last_seq < last_seq)
        .values(last_seq=last_seq, updated_at=now)
    )


@dataclass(frozen=True)
class _Hole:
    below: int  # the seqs missing under this one, when first seen, may still commit...
    snapshot: str  # ...until every transaction running in this snapshot has ended


class CommittedEvents:
    """Reads what committed after a position; remembers a hole it is waiting on between reads."""

    def __init__(self) -> None:
        self._hole: _Hole | None = None

    async def after(
        self, connection: AsyncConnection, position: int, limit: int
    ) -> tuple[list[StoredEvent], int]:
        """Up to `limit` events after `position` with no unsettled hole before them, and the
        position to store once they are handed on (past any settled hole they follow)."""
        events, position, new_hole = await self._read(connection, position, limit)
        if new_hole:  # often settled already (a rollback long ago, seqs lost at a restart)
            more, position, _ = await self._read(connection, position, limit - len(events))
            events += more
        return events, position

    async def _read(
        self, connection: AsyncConnection, position: int, limit: int
    ) -> tuple[list[StoredEvent], int, bool]:
        settled_below = await self._settled_below(connection)
        snapshot = (
            cast(func.pg_current_snapshot(), Text)
            if connection.dialect.name == "postgresql"
            else None
        )
        query = (
            select(domain_events, *([snapshot.label("snapshot")] if snapshot is not None else []))
            .where(domain_events.c.seq > position)
            .order_by(domain_events.c.seq)
            .limit(limit)
        )
        rows = (await connection.execute(query)).mappings().all()
        events: list[StoredEvent] = []
        for row in rows:
            hole_ends = row["seq"] > position + 1
            if hole_ends and snapshot is not None and row["seq"] > settled_below:
                new_hole = self._hole is None
                if new_hole:
                    self._hole = _Hole(rows[-1]["seq"], row["snapshot"])
                return events, position, new_hole
            events.append(StoredEvent.of(row))
            position = row["seq"]
        return events, position, False

    async def _settled_below(self, connection: AsyncConnection) -> int:
        """Checked before the read, so nothing can commit unseen between the check and it."""
        if self._hole is None:
            return 0
        # pg_stat_activity is read once per transaction and kept: drop that copy, read it now.
        await connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        running = await connection.scalar(_STILL_RUNNING, {"snapshot": self._hole.snapshot})
        if running:
            return 0
        below, self._hole = self._hole.below, None
        return below
