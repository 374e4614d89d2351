"""Checked in SQL after every phase, over the whole benchmark database: DESIGN.md invariants 1-2
(the same queries as the test suite's), idempotency keys, and what the clients were told against
what the database holds. A broken check fails the benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.autovacuum import analyze_grown
from bench.seed import Sale
from tests.invariants import INVENTORY_BROKEN, LEFT_PENDING_TWICE, STATUS_WITHOUT_EVENT

OK = "ok"

# Two keys claiming one booking would mean one request's booking was handed to another's key.
BOOKING_WITH_TWO_KEYS = """
SELECT resource_id, COUNT(*) FROM idempotency_keys WHERE resource_id IS NOT NULL
GROUP BY resource_id HAVING COUNT(*) > 1
"""
# Every bench booking request carries a key, so a booking without one was made twice or by no one.
BOOKING_WITHOUT_KEY = """
SELECT b.id FROM bookings b
WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.resource_id = b.id)
"""
KEY_WITHOUT_BOOKING = """
SELECT k.key FROM idempotency_keys k
WHERE k.resource_type = 'booking'
  AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.id = k.resource_id)
"""
HOLDS_OF_TYPE = """
SELECT b.id, bl.quantity FROM bookings b JOIN booking_lines bl ON bl.booking_id = b.id
WHERE bl.ticket_type_id = :ticket_type_id AND b.status IN ('pending', 'confirmed')
"""

# A sale counted instead (a marathon's million ids are not kept): its bookings, the expired ones,
# the tickets pending and confirmed bookings hold, and the tickets left, in one snapshot.
BOOKINGS_OF_TYPE = """
SELECT COUNT(*) AS bookings,
       COUNT(*) FILTER (WHERE b.status = 'expired') AS expired,
       COALESCE(SUM(bl.quantity) FILTER (WHERE b.status IN ('pending', 'confirmed')), 0) AS held,
       (SELECT available FROM ticket_types WHERE id = :ticket_type_id) AS available
FROM bookings b JOIN booking_lines bl ON bl.booking_id = b.id
WHERE bl.ticket_type_id = :ticket_type_id
"""


@dataclass(frozen=True)
class SaleCount:
    bookings: int  # stored for the ticket type, whatever their status
    expired: int  # of them, holds the sweeper expired (their tickets went back on sale)
    held: int  # tickets held by pending and confirmed bookings
    available: int  # tickets left


def _verdict(rows: Sequence[Any], what: str) -> str:
    return OK if not rows else f"BROKEN: {len(rows)} {what}, e.g. {[tuple(r) for r in rows[:3]]}"


async def check_database(engine: AsyncEngine, *, every_booking_keyed: bool) -> dict[str, str]:
    """Invariants over everything the benchmark has done so far."""
    checks = {
        "invariant 1: 0 <= available <= total = available + held + sold": (
            INVENTORY_BROKEN,
            "ticket types off",
        ),
        "invariant 2: a booking leaves pending at most once": (
            LEFT_PENDING_TWICE,
            "bookings",
        ),
        "invariant 2: every booking status has its event": (
            STATUS_WITHOUT_EVENT,
            "bookings",
        ),
        "idempotency: no booking claimed by two keys": (BOOKING_WITH_TWO_KEYS, "bookings"),
        "idempotency: every committed key names a stored booking": (
            KEY_WITHOUT_BOOKING,
            "keys",
        ),
    }
    if every_booking_keyed:
        checks["idempotency: every booking has exactly its own key"] = (
            BOOKING_WITHOUT_KEY,
            "bookings without a key",
        )
    verdicts: dict[str, str] = {}
    async with engine.connect() as connection:
        # The bench's PostgreSQL runs with autovacuum off (DESIGN.md): without fresh statistics
        # the planner takes a journey's 100,000 bookings for the few it saw at seeding, and the
        # anti-joins below ran for minutes.
        await analyze_grown(connection, rows=0, scale=0)  # never an empty table (autovacuum.py)
        for name, (sql, what) in checks.items():
            verdicts[name] = _verdict((await connection.execute(text(sql))).all(), what)
    return verdicts


async def check_sale(
    engine: AsyncEngine,
    sale: Sale,
    held_ids: list[str],
    unanswered: int,
    refused_sold_out: int,
) -> tuple[dict[str, str], int, int]:
    """What the buyers of `sale` were told against what is stored. Returns the verdicts, the
    tickets held in the database and the tickets left."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(text(HOLDS_OF_TYPE), {"ticket_type_id": sale.ticket_type_id})
        ).all()
        available = await connection.scalar(
            text("SELECT available FROM ticket_types WHERE id = :id"), {"id": sale.ticket_type_id}
        )
    stored = {str(row.id) for row in rows}
    held = sum(row.quantity for row in rows)
    told = set(held_ids)
    verdicts = {
        "every 201 is a stored hold (2xx means durable)": _verdict(
            sorted(told - stored), "answered holds missing"
        ),
        "no booking id answered twice": _verdict(
            [i for i in told if held_ids.count(i) > 1][:3] if len(told) != len(held_ids) else [],
            "ids",
        ),
        # A request that failed or timed out may still have committed; nothing else may.
        "no stored hold beyond the 201s, but for failed requests": (
            OK
            if len(stored - told) <= unanswered
            else f"BROKEN: {len(stored - told)} holds stored that no 201 reported "
            f"(only {unanswered} requests failed)"
        ),
        # Tickets return only when holds expire or are cancelled, which no phase does.
        "no 'sold out' while tickets were left": (
            OK
            if not refused_sold_out or available == 0
            else f"BROKEN: {refused_sold_out} refused as sold out, {available} tickets left"
        ),
    }
    return verdicts, held, int(available or 0)


async def check_sale_by_count(
    engine: AsyncEngine,
    sale: Sale,
    answered_held: int,
    unanswered: int,
    refused_sold_out: int,
) -> tuple[dict[str, str], SaleCount]:
    """`check_sale` by counts, for a sale of quantity 1 per booking whose ids were not kept:
    a lost 201 or an id answered twice shows as fewer bookings stored than 201s answered."""
    async with engine.connect() as connection:
        # Fresh statistics for the join over a million new rows (autovacuum is off here).
        await connection.execute(text("ANALYZE bookings, booking_lines, ticket_types"))
        row = (
            await connection.execute(
                text(BOOKINGS_OF_TYPE), {"ticket_type_id": sale.ticket_type_id}
            )
        ).one()
    count = SaleCount(int(row.bookings), int(row.expired), int(row.held), int(row.available))
    beyond = count.bookings - answered_held
    verdicts = {
        "every 201 is a stored booking (counted)": (
            OK
            if beyond >= 0
            else f"BROKEN: {answered_held:,} answered 201, {count.bookings:,} bookings stored"
        ),
        "no stored booking beyond the 201s, but for failed requests (counted)": (
            OK
            if beyond <= unanswered
            else f"BROKEN: {beyond:,} bookings stored that no 201 reported "
            f"(only {unanswered:,} requests failed)"
        ),
        "tickets held + tickets left == total": (
            OK
            if count.held + count.available == sale.total
            else f"BROKEN: {count.held:,} held + {count.available:,} left != {sale.total:,}"
        ),
        # Expired holds give their tickets back: then a 409 may have come before they did.
        "no 'sold out' while tickets were left, but for expired holds": (
            OK
            if not refused_sold_out or count.available == 0 or count.expired
            else f"BROKEN: {refused_sold_out:,} refused as sold out, {count.available:,} left"
        ),
    }
    return verdicts, count
