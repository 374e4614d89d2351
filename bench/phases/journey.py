"""`journey`: a competing design's headline load test, reproduced. U users (5,000), each on its
own connection, loop over a buyer's visit — the list of events, one of them, a hold of 1 or 2
tickets, and for half of the holds the payment (app -> sandbox provider -> signed webhook back)
and the tickets — thinking 2-6 s between requests, started evenly over a 30 s ramp, for 5
minutes. Closed loop with think time, as JMeter runs it (bench/README.md says why)."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

import httpx

from bench.config import CORES, BenchConfig
from bench.context import Context, PhaseResult
from bench.journey_checks import check_journey, mails_sent, webhooks_back
from bench.journey_requests import QUANTITIES, JourneyPlan, Route
from bench.journey_stats import JourneyMeasurement
from bench.phases.common import finish
from bench.seed import Sale
from bench.stats import latency_summary

EVENTS = 10  # so the list has content and the event pages differ
# Sooner than any other phase's events (30 days): the list, soonest first, shows these first.
STARTS_IN = timedelta(days=7)
TIMER_LAG_LIMIT_MS = 50.0
LISTED_PATIENCE = 10.0  # seconds for the list to show events just seeded (cached reads)
LISTED_POLL = 0.2
PROVIDER_LOG_LINES = 15


def tickets_per_type(config: BenchConfig) -> int:
    """More than all users can hold on one ticket type: a visit reaches its hold at most once
    per three think times (list, event, hold), so no type can sell out, whatever the dice."""
    holds_per_user = math.floor(config.journey_duration / (3 * config.journey_think[0])) + 1
    return config.journey_users * holds_per_user * max(QUANTITIES)


async def journey(context: Context) -> PhaseResult:
    config = context.config
    await context.app.ensure(config.engine)
    total = tickets_per_type(config)
    # The load's buyers come back again and again (a few thousand accounts, far more holds):
    # a per-buyer cap would refuse them, so this sale has none, as its organizer may choose.
    sales = [
        await context.new_sale(
            total, title=f"Bench journey {n}", starts_in=STARTS_IN, max_tickets_per_buyer=None
        )
        for n in range(EVENTS)
    ]
    await _check_listed(context, sales)
    plan = JourneyPlan(
        event_ids=tuple(sale.event_id for sale in sales),
        ticket_type_ids=tuple(sale.ticket_type_id for sale in sales),
        tokens=context.tokens[: config.journey_users],
        users=config.journey_users,
        ramp=config.journey_ramp,
        duration=config.journey_duration,
        think=config.journey_think,
        pay_share=config.journey_pay_share,
    )
    job = context.job(mode="journey", requests=plan, connections=plan.users, duration=plan.duration)
    label = f"journey: {plan.users:,} users, {plan.duration:g} s"
    m = JourneyMeasurement.of(await context.drive_raw(job, label))
    confirmed, mailed = await mails_sent(context.bus.engine, plan.ticket_type_ids)
    payments, callbacks = await webhooks_back(context.bus.engine, context.app.running.log_path)
    checks = await check_journey(
        context.bus.engine,
        plan.ticket_type_ids,
        m.held,
        m.paid,
        m.failures.get(Route.HOLD, 0),
        m.failures.get(Route.PAY, 0),
        (payments, callbacks),
    )
    result = PhaseResult(
        "journey",
        summary=_summary(plan, m),
        outcomes=m.outcomes(),
        checks=checks,
        details=_details(plan, m, total),
    )
    result.details["webhooks"] = {"succeeded_payments": payments, "callbacks_received": callbacks}
    result.details["mails_at_end"] = {"confirmed": confirmed, "mailed": mailed}
    _add_notes(context, result, plan, m)
    return await finish(context, result)


async def _check_listed(context: Context, sales: list[Sale]) -> None:
    """The users open events "from the list": its first page must show all of them. Public
    reads are cached (for up to a second or so), so they may show a moment after they exist."""
    deadline = asyncio.get_running_loop().time() + LISTED_PATIENCE
    async with httpx.AsyncClient(base_url=context.app.running.base_url, timeout=30) as client:
        while True:
            answer = await client.get("/api/v1/events")
            answer.raise_for_status()
            listed = {item["id"] for item in answer.json()["items"]}
            unlisted = [sale.event_id for sale in sales if sale.event_id not in listed]
            if not unlisted:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"GET /api/v1/events did not list the journey's events {unlisted} "
                    f"within {LISTED_PATIENCE:g} s"
                )
            await asyncio.sleep(LISTED_POLL)  # poll interval while the cached list renews


def _summary(plan: JourneyPlan, m: JourneyMeasurement) -> dict[str, Any]:
    overall = latency_summary(m.overall())
    steady = m.answers_per_second(plan.ramp, plan.duration)
    timeouts = sum(m.count(route, "timeout") for route in Route)
    return {
        "users": plan.users,
        "req_per_s": round(m.answered / m.elapsed(plan.duration)),  # whole run, ramp included
        "steady_req_per_s": round(steady) if steady is not None else "n/a",  # after the ramp
        "avg_ms": overall["avg_ms"],
        "p95_ms": overall["p95_ms"],
        "p99_ms": overall["p99_ms"],
        "max_ms": overall["max_ms"],
        "error_rate_pct": round(100 * m.failed / max(1, m.requests), 4),
        "errors": m.failed - timeouts,
        "timeouts": timeouts,
        "unavailable_503": m.unavailable,
        "503_with_retry_after": m.unavailable_with_retry_after,
        # Shed early? How long a refused request waited for its 503 (issue 15's target 2).
        "503_p95_ms": latency_summary(m.refused)["p95_ms"] if m.unavailable else "n/a",
        "503_max_ms": latency_summary(m.refused)["max_ms"] if m.unavailable else "n/a",
        "held": len(m.held),
        "paid": len(m.paid),
        "tickets_shown": m.routes[Route.TICKETS].get_total_count()
        - m.failures.get(Route.TICKETS, 0),
    }


def _details(plan: JourneyPlan, m: JourneyMeasurement, total: int) -> dict[str, Any]:
    elapsed = m.elapsed(plan.duration)
    steady = m.answers_per_second(plan.ramp, plan.duration)
    think = sum(plan.think) / 2
    return {
        "plan": {
            "users": plan.users,
            "ramp_s": plan.ramp,
            "duration_s": plan.duration,
            "think_s": list(plan.think),
            "pay_share": plan.pay_share,
            "events": len(plan.event_ids),
            "tickets_per_type": total,
        },
        "requests": m.requests,
        "answered": m.answered,
        "elapsed_s": round(elapsed, 3),
        "statuses": m.statuses,
        # Closed loop, all users busy: R = N / X - Z. Far above the measured average, the
        # generator offered less than its users would (late timers, reconnections).
        "response_ms_from_throughput": (
            round((plan.users / steady - think) * 1000, 1) if steady else "n/a"
        ),
        "generator_timer_lag": latency_summary(m.lag),
        "cpu": m.cpu.as_dict(CORES),
        "load_generator_cores": round(m.client_cpu_seconds / elapsed, 3),
        "load_generator_share_of_machine": round(m.client_cpu_seconds / elapsed / CORES, 3),
        "reconnects": m.reconnects,
        "users_lost": m.users_lost,
        "error_kinds": m.error_kinds,
        "error_examples": m.error_examples,
        "answers_per_second": m.per_second[: math.ceil(elapsed)],
    }


def _add_notes(
    context: Context, result: PhaseResult, plan: JourneyPlan, m: JourneyMeasurement
) -> None:
    lag_p99 = float(result.details["generator_timer_lag"]["p99_ms"])
    if lag_p99 > TIMER_LAG_LIMIT_MS:
        result.notes.append(
            f"the load generator's timers fired late (p99 {lag_p99} ms): short of CPU, it "
            "offered less load than its users would have"
        )
    if m.users_lost:
        result.notes.append(f"{m.users_lost} users dropped out (no new connection)")
    if len(context.tokens) < plan.users:
        result.notes.append(f"{plan.users:,} users share {len(context.tokens):,} buyers' tokens")
    mails = result.details["mails_at_end"]
    if mails["mailed"] < mails["confirmed"]:
        result.notes.append(
            f"when the load stopped, {mails['mailed']:,} of {mails['confirmed']:,} paid "
            "bookings had been mailed their tickets: the consumers wait for lulls, so the rest "
            "of their work comes after the measured window"
        )
    webhooks = result.details["webhooks"]
    lost = webhooks["succeeded_payments"] - webhooks["callbacks_received"]
    if lost > 0:
        result.notes.append(
            f"{lost:,} succeeded payments' webhooks did not come back (the provider gives up "
            "after 5 attempts: see provider_log_tail)"
        )
    if (m.failures.get(Route.PAY) or lost > 0) and context.provider is not None:
        tail = context.provider.log_tail(PROVIDER_LOG_LINES).splitlines()
        result.details["provider_log_tail"] = tail
