"""`burst` and `baseline-lock`: U buyers, each on a connection of their own opened beforehand,
all send one booking at the same instant for a fresh ticket type of T tickets. `baseline-lock`
does it against the app restarted with the seed's design (a Redis lock per ticket type)."""

from __future__ import annotations

from bench.context import Context, PhaseResult
from bench.invariants import check_sale
from bench.phases.common import finish, measured
from bench.requests import BookingRequests, Outcome

# Proof the lock design really ran: redis-py takes a lock with SET NX and frees it with a script.
LOCK_COMMANDS = ("set", "evalsha")


async def burst(context: Context) -> PhaseResult:
    await context.app.ensure(context.config.engine)
    return await _burst(context, "burst")


async def baseline_lock(context: Context) -> PhaseResult:
    await context.app.start("baseline-lock")
    before = await context.redis.command_calls()
    result = await _burst(context, "baseline-lock")
    after = await context.redis.command_calls()
    calls = {name: after.get(name, 0) - before.get(name, 0) for name in LOCK_COMMANDS}
    result.details["redis_calls"] = calls
    held = result.summary["held"]
    if held and min(calls.values()) < held:
        result.problems.append(
            f"the app took no Redis lock per booking ({calls} for {held} holds): is "
            "TICKETFLOW_BOOKING_ENGINE=baseline-lock wired to bench_only/baseline_lock.py?"
        )
    return result


async def _burst(context: Context, name: str) -> PhaseResult:
    config = context.config
    sale = await context.new_sale(config.tickets, title=f"Bench {name}")
    tokens = context.tokens[: config.buyers]
    requests = BookingRequests(
        sale.event_id, sale.ticket_type_id, tokens, idempotency_keys=config.idempotency_keys
    )
    job = context.job(mode="burst", requests=requests, connections=len(tokens))
    m = await context.drive(
        job, f"{name}: {len(tokens):,} buyers, {sale.total:,} tickets", len(tokens)
    )
    held, sold_out = m.count(Outcome.HELD), m.count(Outcome.SOLD_OUT)
    checks, stored, left = await check_sale(
        context.bus.engine, sale, m.held_ids, m.failures, sold_out
    )
    selling = m.last_held - m.first_send if held else 0.0
    result = PhaseResult(
        name,
        summary={
            "buyers": len(tokens),
            "tickets": sale.total,
            "held": held,
            "sold_out": sold_out,
            "errors": m.count(Outcome.ERROR),
            "timeouts": m.count(Outcome.TIMEOUT),
            "drain_s": round(m.elapsed, 3),
            # How long writing every request took, from the start instant (all processes).
            "send_spread_ms": round((m.last_send - m.first_send) * 1000, 1),
            # Successful holds per second while the tickets lasted (first send to last 201).
            "holds_per_s": round(held / selling, 1) if selling else 0.0,
            "answers_per_s": round(m.total / m.elapsed),
            "stored_held": stored,
            "left": left,
            "exactly_T_held": stored == min(sale.total, len(tokens)) and held == stored,
        },
        outcomes=m.outcomes(),
        checks=checks,
        details={**measured(m), "ticket_type_id": sale.ticket_type_id},
    )
    return await finish(context, result)
