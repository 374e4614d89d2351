"""DESIGN.md invariants 1-3, checked with SQL over the whole database (and the provider ledger)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# Invariant 1: 0 <= available <= total and available + held/sold quantities == total.
INVENTORY_BROKEN = """
SELECT id, total, available, taken FROM (
    SELECT tt.id, tt.total, tt.available, COALESCE((
        SELECT SUM(bl.quantity) FROM booking_lines bl JOIN bookings b ON b.id = bl.booking_id
        WHERE bl.ticket_type_id = tt.id AND b.status IN ('pending', 'confirmed')), 0) AS taken
    FROM ticket_types tt) AS inventory
WHERE NOT (available >= 0 AND available <= total AND available + taken = total)
"""

# Invariant 2: a booking leaves `pending` at most once, and its status agrees with its events.
LEFT_PENDING_TWICE = """
SELECT stream_id FROM domain_events
WHERE stream_type = 'booking'
  AND type IN ('booking.cancelled', 'booking.expired', 'booking.confirmed')
GROUP BY stream_id HAVING COUNT(*) > 1
"""

STATUS_WITHOUT_EVENT = """
SELECT b.id, b.status FROM bookings b
WHERE NOT EXISTS (
    SELECT 1 FROM domain_events e
    WHERE e.stream_type = 'booking' AND e.stream_id = b.id AND e.type = 'booking.held')
OR (b.status <> 'pending' AND NOT EXISTS (
    SELECT 1 FROM domain_events e
    WHERE e.stream_type = 'booking' AND e.stream_id = b.id
      AND e.type = 'booking.' || CASE b.status WHEN 'cancelled' THEN 'cancelled'
                                                WHEN 'expired' THEN 'expired'
                                                ELSE 'confirmed' END))
"""


async def assert_invariants(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        broken = (await connection.execute(text(INVENTORY_BROKEN))).all()
        assert not broken, f"invariant 1 broken: {broken}"
        twice = (await connection.execute(text(LEFT_PENDING_TWICE))).all()
        assert not twice, f"invariant 2 broken, left pending twice: {twice}"
        unrecorded = (await connection.execute(text(STATUS_WITHOUT_EVENT))).all()
        assert not unrecorded, f"invariant 2/4 broken, status without its event: {unrecorded}"


async def assert_payments_match_ledger(engine: AsyncEngine, provider: httpx.AsyncClient) -> None:
    """Invariant 3 against the provider's own ledger: a confirmed booking was charged exactly its
    total once (net of refunds); any other booking was charged nothing, net; one charge per key.
    """
    charges = (await provider.get("/v1/charges")).json()["items"]
    refunds = (await provider.get("/v1/refunds")).json()["items"]
    refunded: dict[str, int] = {}
    for refund in refunds:
        refunded[refund["charge_id"]] = (
            refunded.get(refund["charge_id"], 0) + refund["amount_minor"]
        )
    net: dict[str, int] = {}
    keys = [charge["idempotency_key"] for charge in charges]
    assert len(keys) == len(set(keys)), "a key was charged twice"
    for charge in charges:
        if charge["status"] == "succeeded":
            kept = charge["amount_minor"] - refunded.get(charge["id"], 0)
            assert kept >= 0, f"over-refunded: {charge}"
            net[charge["reference"]] = net.get(charge["reference"], 0) + kept
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT b.id, b.status, b.total_minor,"
                    " (SELECT COUNT(*) FROM payments p WHERE p.booking_id = b.id"
                    "  AND p.status = 'succeeded' AND p.amount_minor = b.total_minor) AS paid"
                    " FROM bookings b"
                )
            )
        ).all()
    for row in rows:
        kept = net.pop(str(uuid.UUID(str(row.id))), 0)  # SQLite gives bare hex
        if row.status == "confirmed":
            assert (kept, row.paid) == (row.total_minor, 1), f"confirmed booking {row}: {kept}"
        else:
            assert kept == 0, f"{row.status} booking {row.id} keeps {kept} charged"
    assert not net, f"charges for no booking of ours: {net}"


async def _keyed(engine: AsyncEngine, sql: str) -> dict[str, tuple[object, ...]]:
    """Rows by their first column (as text: SQLite hands UUIDs back as bare hex)."""
    async with engine.connect() as connection:
        rows = (await connection.execute(text(sql))).all()
    return {str(uuid.UUID(str(row[0]))): tuple(row[1:]) for row in rows}


# Invariant 4, the live half: each read model says what the tables it summarizes say.
READ_MODELS_AGAINST_STATE = (
    (
        "SELECT ticket_type_id, event_id, total, available FROM rm_availability",
        "SELECT id, event_id, total, available FROM ticket_types",
    ),
    (
        "SELECT ticket_type_id, name, currency, price_minor, held, sold, revenue_minor"
        " FROM rm_ticket_type_sales",
        "SELECT tt.id, tt.name, tt.currency, tt.price_minor,"
        " COALESCE(SUM(CASE WHEN b.status = 'pending' THEN bl.quantity END), 0),"
        " COALESCE(SUM(CASE WHEN b.status = 'confirmed' THEN bl.quantity END), 0),"
        " COALESCE(SUM(CASE WHEN b.status = 'confirmed'"
        "              THEN bl.quantity * bl.unit_price_minor END), 0)"
        " FROM ticket_types tt LEFT JOIN booking_lines bl ON bl.ticket_type_id = tt.id"
        " LEFT JOIN bookings b ON b.id = bl.booking_id"
        " GROUP BY tt.id, tt.name, tt.currency, tt.price_minor",
    ),
    (
        "SELECT event_id, organizer_id, title, status FROM rm_event_sales",
        "SELECT id, organizer_id, title, status FROM events",
    ),
    (
        "SELECT booking_id, user_id, event_id, status, currency, total_minor, hold_expires_at,"
        " created_at, updated_at, version FROM rm_bookings",
        "SELECT id, user_id, event_id, status, currency, total_minor, hold_expires_at,"
        " created_at, updated_at, version FROM bookings",
    ),
)


async def assert_read_models_match_state(engine: AsyncEngine) -> None:
    """The read models agree with the state tables, down to each booking's lines and tickets."""
    for projected, actual in READ_MODELS_AGAINST_STATE:
        assert await _keyed(engine, projected) == await _keyed(engine, actual), projected
    async with engine.connect() as connection:
        rm_rows = (
            await connection.execute(text("SELECT booking_id, lines, ticket_ids FROM rm_bookings"))
        ).all()
        line_rows = (
            await connection.execute(
                text(
                    "SELECT booking_id, ticket_type_id, quantity, unit_price_minor"
                    " FROM booking_lines"
                )
            )
        ).all()
        ticket_rows = (await connection.execute(text("SELECT booking_id, id FROM tickets"))).all()
    projected_lines = {
        (
            str(uuid.UUID(str(row.booking_id))),
            line["ticket_type_id"],
            line["quantity"],
            line["unit_price_minor"],
        )
        for row in rm_rows
        for line in _json(row.lines)
    }
    lines = {(str(uuid.UUID(str(b))), str(uuid.UUID(str(t))), q, p) for b, t, q, p in line_rows}
    assert projected_lines == lines
    projected_tickets = {
        (str(uuid.UUID(str(row.booking_id))), ticket)
        for row in rm_rows
        for ticket in _json(row.ticket_ids)
    }
    assert projected_tickets == {
        (str(uuid.UUID(str(b))), str(uuid.UUID(str(t)))) for b, t in ticket_rows
    }


def _json(value: Any) -> Any:
    """A JSON column as text() hands it back: parsed on PostgreSQL, a string on SQLite."""
    return json.loads(value) if isinstance(value, str) else value
