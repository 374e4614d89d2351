"""DESIGN.md invariants 1 and 2, checked with SQL over the whole database."""

from __future__ import annotations

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
