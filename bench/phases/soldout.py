"""`soldout`: booking requests, closed loop, for a ticket type already sold out — what most
flash-sale traffic is once the tickets are gone."""

from __future__ import annotations

import httpx

from bench.context import Context, PhaseResult
from bench.invariants import check_sale
from bench.phases.common import finish, measured
from bench.requests import BookingRequests, Outcome, booking_id
from bench.seed import Sale


async def soldout(context: Context) -> PhaseResult:
    config = context.config
    sale = await context.new_sale(1, title="Bench sold out")
    requests = BookingRequests(
        sale.event_id, sale.ticket_type_id, context.tokens, idempotency_keys=config.idempotency_keys
    )
    # Sold out the way a sale sells out: the last ticket is held, the next buyer is refused.
    last_ticket = await _sell_out(context, sale, requests)
    job = context.job(
        mode="closed", requests=requests, connections=config.connections, duration=config.duration
    )
    m = await context.drive(job, "soldout: bookings for a sold-out ticket type")
    refused = m.count(Outcome.SOLD_OUT)
    checks, stored, left = await check_sale(
        context.bus.engine, sale, [last_ticket, *m.held_ids], m.failures, refused
    )
    if stored != 1 or left != 0:
        checks["sold-out type stays sold out"] = f"BROKEN: {stored} held, {left} left"
    result = PhaseResult(
        "soldout",
        summary={
            "req_per_s": round(refused / m.elapsed),  # answered 409 sold out only
            "sold_out": refused,
            "held": m.count(Outcome.HELD),
            "errors": m.count(Outcome.ERROR),
            "timeouts": m.count(Outcome.TIMEOUT),
        },
        outcomes=m.outcomes(),
        checks=checks,
        details=measured(m),
    )
    return await finish(context, result)


async def _sell_out(context: Context, sale: Sale, requests: BookingRequests) -> str:
    """Hold the sale's one ticket and see the next buyer refused; the id of the hold."""
    body = {
        "event_id": sale.event_id,
        "lines": [{"ticket_type_id": sale.ticket_type_id, "quantity": 1}],
    }
    answers = []
    async with httpx.AsyncClient(base_url=context.app.running.base_url, timeout=30) as client:
        for index, token in enumerate(requests.tokens[:2]):
            headers = {"Authorization": f"Bearer {token}"}
            if requests.idempotency_keys:
                headers["Idempotency-Key"] = f"bench-sell-out-{sale.ticket_type_id}-{index}"
            answers.append(await client.post("/api/v1/bookings", json=body, headers=headers))
    statuses = [answer.status_code for answer in answers]
    if statuses != [201, 409]:
        raise RuntimeError(f"selling out the ticket type gave {statuses}, not [201, 409]")
    return booking_id(answers[0].content)
