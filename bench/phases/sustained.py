"""`sustained`: bookings at a constant arrival rate, open loop (latency from each request's
intended send time), at increasing rates until one misses p99 < budget or errs; each rate on a
fresh ticket type twice as large as the requests it gets, so it never sells out. If even the
first rate fails, the rate is halved (down to `LOWEST_RATE`) to find one that passes. Then the
edge is bisected between the best rate that passed and the lowest that failed (three times by
default: within an eighth of a doubling), to `RATE_GRAIN`."""

from __future__ import annotations

from typing import Any

from bench.app_metrics import ServerLatency, answered_within, batch_figures, hold_batches
from bench.context import Context, PhaseResult
from bench.invariants import check_sale
from bench.phases.common import finish, measured, open_loop_bookings
from bench.requests import API, Outcome
from bench.stats import latency_summary

# If the generator itself sends this late (p99), the step measured the client, not the server.
GENERATOR_LAG_LIMIT_MS = 10.0
LOWEST_RATE = 50
RATE_GRAIN = 50  # refined rates are multiples of this
BOOKINGS = f"{API}/bookings"


def refined_rate(passed: int, failed: int | None, grain: int = RATE_GRAIN) -> int | None:
    """Halfway between the best rate that passed and the lowest that failed, to `grain`; None
    when nothing failed above it, or no multiple of `grain` lies strictly between the two."""
    if not passed or failed is None:
        return None
    middle = round((passed + failed) / 2 / grain) * grain
    return middle if passed < middle < failed else None


async def sustained(context: Context) -> PhaseResult:
    result = PhaseResult("sustained", summary={}, outcomes={})
    steps: list[dict[str, Any]] = []
    best = 0
    for rate in context.config.rates:
        steps.append(await _step(context, result, rate))
        if not steps[-1]["passed"]:
            break
        best = rate
    rate = context.config.rates[0] // 2
    while not best and rate >= LOWEST_RATE:  # not even the first rate: find a floor
        steps.append(await _step(context, result, rate))
        best = rate if steps[-1]["passed"] else 0
        rate //= 2
    for _ in range(context.config.rate_refinements):
        refined = refined_rate(best, _lowest_failed(steps, best))
        if refined is None:
            break
        steps.append(await _step(context, result, refined))
        best = refined if steps[-1]["passed"] else best
    result.summary = {
        "best_rate_per_s": best,
        "p99_budget_ms": context.config.p99_budget_ms,
        "failed_at_rate": _lowest_failed(steps, best),
    }
    decisive = next((step for step in steps if step["rate"] == best), steps[-1])
    result.outcomes = decisive["outcomes"]
    result.details = {"steps": steps}
    return await finish(context, result)


def _lowest_failed(steps: list[dict[str, Any]], best: int) -> int | None:
    return min(
        (step["rate"] for step in steps if not step["passed"] and step["rate"] > best), default=None
    )


async def _step(context: Context, result: PhaseResult, rate: int) -> dict[str, Any]:
    config = context.config
    requests_due = round(rate * config.step_duration)
    # The load's buyers come back again and again (a few thousand accounts, far more holds):
    # a per-buyer cap would refuse them, so this sale has none, as its organizer may choose.
    sale = await context.new_sale(
        2 * requests_due, title=f"Bench sustained {rate}/s", max_tickets_per_buyer=None
    )
    job = open_loop_bookings(context, sale, rate, config.step_duration)
    base = context.app.running.base_url
    batches_before = await hold_batches(base)
    holds_before = await answered_within(base, "POST", BOOKINGS, 201)
    m = await context.drive(job, f"sustained: {rate:,} bookings/s", requests_due)
    batches = batch_figures(batches_before, await hold_batches(base))
    # The app's own timing of the same holds: whether a slow tail is the server's or the
    # client's (the generator and the app share this box).
    app = ServerLatency.between(holds_before, await answered_within(base, "POST", BOOKINGS, 201))
    overall = latency_summary(m.overall())
    # Anything but a hold is a failure here: the ticket type can't sell out.
    failures = m.total - m.count(Outcome.HELD)
    lag_p99 = latency_summary(m.lag)["p99_ms"]
    checks, _, _ = await check_sale(
        context.bus.engine, sale, m.held_ids, failures, m.count(Outcome.SOLD_OUT)
    )
    result.checks.update({f"{rate}/s: {name}": verdict for name, verdict in checks.items()})
    if float(lag_p99) > GENERATOR_LAG_LIMIT_MS:
        result.notes.append(
            f"at {rate}/s the load generator itself sent late (p99 {lag_p99} ms): the "
            "client was short of CPU too, so this step is a lower bound of the server"
        )
    return {
        "rate": rate,
        "answered_per_s": round(m.total / m.elapsed),
        **{k: v for k, v in overall.items() if k != "count"},
        "held": m.count(Outcome.HELD),
        "failures": failures,
        "generator_lag_p99_ms": lag_p99,
        **(batches or {}),
        **(
            {"app_within_100ms": app.within_100ms, "app_p99_at_most_ms": app.p99_at_most_ms}
            if app
            else {}
        ),
        "passed": failures == 0 and float(overall["p99_ms"]) < config.p99_budget_ms,
        "details": measured(m),
        "outcomes": m.outcomes(),
    }
