"""After the journey, in SQL: what the buyers were told (201 holds, 201 payments) against what is
stored; and that the provider's signed webhooks reach the app."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.autovacuum import analyze_grown
from bench.invariants import OK

# Every booking on the journey's ticket types: its quantity, its succeeded payments (and those
# of exactly its total) and its tickets not voided.
JOURNEY_BOOKINGS = text("""
WITH journey AS (
    SELECT b.id, b.status, b.total_minor, SUM(bl.quantity) AS quantity
    FROM bookings b JOIN booking_lines bl ON bl.booking_id = b.id
    WHERE bl.ticket_type_id IN :types
    GROUP BY b.id)
SELECT j.id, j.status, j.quantity,
       COALESCE(p.succeeded, 0) AS succeeded, COALESCE(p.in_full, 0) AS in_full,
       COALESCE(t.issued, 0) AS issued
FROM journey j
LEFT JOIN (
    SELECT p.booking_id, COUNT(*) AS succeeded,
           COUNT(*) FILTER (WHERE p.amount_minor = b.total_minor) AS in_full
    FROM payments p JOIN bookings b ON b.id = p.booking_id
    WHERE p.status = 'succeeded' GROUP BY p.booking_id) p ON p.booking_id = j.id
LEFT JOIN (
    SELECT booking_id, COUNT(*) AS issued FROM tickets WHERE voided_at IS NULL
    GROUP BY booking_id) t ON t.booking_id = j.id
""").bindparams(bindparam("types", expanding=True))
LEFT_ON_TYPES = text("SELECT MIN(available) FROM ticket_types WHERE id IN :types").bindparams(
    bindparam("types", expanding=True)
)
SUCCEEDED_PAYMENTS = text("SELECT COUNT(*) FROM payments WHERE status = 'succeeded'")
# The journey's confirmed bookings, and how many of them the e-mail consumer has applied (its
# inbox): what the run left for the consumers to do after it.
CONFIRMED_AND_MAILED = text("""
SELECT COUNT(*) AS confirmed, COUNT(i.stream_id) AS mailed
FROM domain_events d
LEFT JOIN consumer_inbox i ON i.consumer = 'email' AND i.stream_type = d.stream_type
     AND i.stream_id = d.stream_id AND i.version = d.version
WHERE d.type = 'booking.confirmed' AND d.stream_id IN (
    SELECT booking_id FROM booking_lines WHERE ticket_type_id IN :types)
""").bindparams(bindparam("types", expanding=True))
# An access-log line of a callback the app accepted (a callback that repeats a charge the pay
# request settled writes nothing to the database, so the log is where it is counted).
WEBHOOK_ROUTE = "/api/v1/payments/webhook"
WEBHOOK_PATIENCE = 15.0  # seconds the provider's last callbacks may take after the run
POLL = 0.2


def _broken(problems: Sequence[object], what: str) -> str:
    return OK if not problems else f"BROKEN: {len(problems)} {what}, e.g. {problems[:3]}"


async def check_journey(
    engine: AsyncEngine,
    ticket_type_ids: tuple[str, ...],
    held: list[tuple[str, int]],
    paid: list[tuple[str, int]],
    failed_holds: int,
    failed_payments: int,
    webhooks: tuple[int, int],
) -> dict[str, str]:
    """`held` and `paid`: (booking id, quantity) of each 201; `failed_*`: requests without the
    expected answer, which may still have committed; `webhooks`: what `webhooks_back` found."""
    async with engine.connect() as connection:
        await analyze_grown(connection, rows=0, scale=0)  # what the run grew (bench/invariants.py)
        rows = (await connection.execute(JOURNEY_BOOKINGS, {"types": ticket_type_ids})).all()
        left = await connection.scalar(LEFT_ON_TYPES, {"types": ticket_type_ids})
    stored = {str(row.id): row for row in rows}
    told_held = dict(held)
    told_paid = dict(paid)
    twice = [booking for booking, n in Counter(b for b, _ in held).items() if n > 1]
    missing = [b for b in told_held if b not in stored]
    other_quantity = [
        (b, q, stored[b].quantity) for b, q in held if b in stored and stored[b].quantity != q
    ]
    unpaid_wrong = []
    for booking, quantity in paid:
        row = stored.get(booking)
        found = (row.status, row.succeeded, row.in_full, row.issued) if row else None
        if found != ("confirmed", 1, 1, quantity):
            unpaid_wrong.append((booking, found))
    untold = len(stored.keys() - told_held.keys())
    confirmed_untold = sum(
        1 for b, row in stored.items() if row.status == "confirmed" and b not in told_paid
    )
    return {
        "journey: every 201 hold is stored, of the quantity asked": _broken(
            [*missing, *other_quantity], "answered holds missing or of another quantity"
        ),
        "journey: no booking id answered twice": _broken(twice, "ids"),
        "journey: no stored booking beyond the 201 holds, but for failed requests": (
            OK
            if untold <= failed_holds
            else f"BROKEN: {untold} bookings no 201 reported (only {failed_holds} holds failed)"
        ),
        "journey: every 201 payment's booking is confirmed, paid once in full, with its tickets": (
            _broken(unpaid_wrong, "paid bookings (status, payments, in full, tickets)")
        ),
        "journey: no booking confirmed beyond the 201 payments, but for failed requests": (
            OK
            if confirmed_untold <= failed_payments
            else f"BROKEN: {confirmed_untold} confirmed that no 201 reported "
            f"(only {failed_payments} payments failed)"
        ),
        "journey: no ticket type sold out (supply sized to last)": (
            OK if left is None or left > 0 else "BROKEN: a journey ticket type sold out"
        ),
        "journey: the provider's signed webhooks reach the app": webhook_verdict(*webhooks),
    }


async def webhooks_back(engine: AsyncEngine, app_log: Path) -> tuple[int, int]:
    """(succeeded payments, signed callbacks the app accepted, from its access log). The
    callbacks travel after the answer, so the last ones are waited for, a while."""
    deadline = asyncio.get_running_loop().time() + WEBHOOK_PATIENCE
    while True:
        async with engine.connect() as connection:
            payments = int(await connection.scalar(SUCCEEDED_PAYMENTS) or 0)
        callbacks = callbacks_accepted(app_log)
        if callbacks >= payments or asyncio.get_running_loop().time() > deadline:
            return payments, callbacks
        await asyncio.sleep(POLL)  # poll interval while the provider's callbacks land


async def mails_sent(engine: AsyncEngine, ticket_type_ids: Sequence[str]) -> tuple[int, int]:
    """(the journey's confirmed bookings, of them mailed so far): under a saturating load the
    consumers wait for lulls and fall behind, and the run does not count what it left them."""
    async with engine.connect() as connection:
        row = (await connection.execute(CONFIRMED_AND_MAILED, {"types": ticket_type_ids})).one()
    return int(row.confirmed), int(row.mailed)


def callbacks_accepted(app_log: Path) -> int:
    """The app's request log lines (JSON, however it spaces them) of a 200 to the webhook."""
    accepted = 0
    with app_log.open(errors="replace") as lines:
        for line in lines:
            if WEBHOOK_ROUTE not in line:
                continue
            try:
                logged = json.loads(line)
            except ValueError:
                continue  # a line of the server's own, not a request's
            if isinstance(logged, dict):
                accepted += logged.get("route") == WEBHOOK_ROUTE and logged.get("status") == 200
    return accepted


def webhook_verdict(payments: int, callbacks: int) -> str:
    """The wiring works if callbacks come back at all (a wrong secret or URL: none would). Some
    missing is not broken: a provider that gives up on an overloaded app loses them, and the
    pay request settled the payment anyway; the phase reports how many came back."""
    if payments and not callbacks:
        return f"BROKEN: no verified charge.succeeded callback for {payments} payments"
    return OK
