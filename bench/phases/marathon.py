"""`marathon` (opt-in; issue 15 target 6): one event's N tickets (1,000,000) sold one per booking
at a constant rate, open loop, until sold out, the app running as in production (10-minute holds,
the sweeper, the outbox relay and the consumers in its processes). Latency per window of intended
send time, the relay's lag sampled every window, the database's growth; the sale checked in SQL
by counts (a million ids are not kept)."""

from __future__ import annotations

import math
from typing import Any

from bench.context import Context, PhaseResult
from bench.db_figures import growth, relay_catch_up, sampling_relay_lag, sizes
from bench.invariants import SaleCount, check_sale_by_count
from bench.phases.common import finish, measured, open_loop_bookings
from bench.requests import Outcome
from bench.stats import Measurement, latency_summary
from ticketflow.services.outbox_relay import redis_relay

HOLD_TTL_SECONDS = 600  # the 10-minute holds (the bench's other phases keep theirs 6 h)
DEFAULT_RATE = 2_000
# Requests due beyond the tickets, for those that fail: the sale stops once it is sold out.
MARGIN, MIN_MARGIN = 0.01, 100
RELAY_PATIENCE = 120.0  # seconds the relay has to publish what the sale stored, after it
GENERATOR_LAG_LIMIT_MS = 10.0


def marathon_rate(context: Context) -> tuple[int, str]:
    """The rate asked for; else the best that `sustained` found in this run; else 2,000/s."""
    if context.config.marathon_rate:
        return context.config.marathon_rate, "--marathon-rate"
    sustained = context.results.get("sustained")
    best = sustained.summary.get("best_rate_per_s") if sustained else None
    if isinstance(best, int) and best > 0:
        return best, "sustained's best rate in this run"
    return DEFAULT_RATE, "the default"


async def marathon(context: Context) -> PhaseResult:
    config, engine = context.config, context.bus.engine
    await context.app.ensure(config.engine, hold_ttl_seconds=HOLD_TTL_SECONDS)
    rate, rate_from = marathon_rate(context)
    tickets = config.marathon_tickets
    due = tickets + max(MIN_MARGIN, math.ceil(tickets * MARGIN))
    # The load's buyers come back again and again (a few thousand accounts, far more holds):
    # a per-buyer cap would refuse them, so this sale has none, as its organizer may choose.
    sale = await context.new_sale(tickets, title="Bench marathon", max_tickets_per_buyer=None)
    relay = redis_relay(context.bus).position
    before = await sizes(engine)
    job = open_loop_bookings(
        context,
        sale,
        rate,
        due / rate,
        window=config.marathon_window,
        until_sold_out=True,
        keep_held=False,
    )
    label = f"marathon: {tickets:,} tickets at {rate:,} bookings/s"
    async with sampling_relay_lag(engine, relay, config.marathon_window) as samples:
        m = await context.drive(job, label, due)
    held, refused = m.count(Outcome.HELD), m.count(Outcome.SOLD_OUT)
    # Counted at once: a hold of the first seconds expires 10 minutes after it was made.
    checks, count = await check_sale_by_count(engine, sale, held, m.failures, refused)
    caught_up = await relay_catch_up(engine, relay, RELAY_PATIENCE)
    db = growth(before, await sizes(engine), count.bookings)
    lags = [sample.as_dict(m.first_send) for sample in samples]
    windows = _windows(m, config.marathon_window, lags)
    result = PhaseResult(
        "marathon",
        summary={
            "tickets": tickets,
            "rate_per_s": rate,
            **_sale(m, count, tickets),
            **_windows_summary(windows, config.marathon_p99_budget_ms),
            "db_mb_per_million_bookings": db["database"]["mb_per_million_bookings"],
            **_relay_summary(lags, caught_up),
        },
        outcomes=m.outcomes(),
        checks=checks,
        details={
            **measured(m),
            "rate_from": rate_from,
            "requests_due": due,
            "hold_ttl_s": HOLD_TTL_SECONDS,
            "window_s": config.marathon_window,
            "windows": windows,
            "relay_lag_samples": lags,
            "db_growth": db,
            "ticket_type_id": sale.ticket_type_id,
        },
    )
    _add_notes(result, m, count, tickets / rate, caught_up)
    return await finish(context, result)


def _sale(m: Measurement, count: SaleCount, tickets: int) -> dict[str, Any]:
    held, refused = m.count(Outcome.HELD), m.count(Outcome.SOLD_OUT)
    selling = m.last_held - m.first_send if held else 0.0  # first send to the last 201
    return {
        "held": held,
        "sold_out": refused,
        "errors": m.count(Outcome.ERROR),
        "timeouts": m.count(Outcome.TIMEOUT),
        "sell_out_s": round(selling, 2) if refused and held else None,
        "holds_per_s": round(held / selling) if selling else 0,
        "stored_held": count.held,
        "left": count.available,
        "expired": count.expired,
        "exactly_N_held": count.held == tickets and held == tickets,
    }


def _windows_summary(windows: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    worst = max(windows, key=lambda window: window["p99_ms"], default=None)
    return {
        "windows": len(windows),
        "windows_over_budget": sum(window["p99_ms"] >= budget for window in windows),
        "worst_window_p99_ms": worst["p99_ms"] if worst else None,
        "p99_budget_ms": budget,
    }


def _relay_summary(lags: list[dict[str, Any]], caught_up: float | None) -> dict[str, Any]:
    during = [lag for lag in lags if lag["t_s"] >= 0]  # sampled from the first send on
    ages = [lag["oldest_age_s"] for lag in during if lag["oldest_age_s"] is not None]
    return {
        "relay_max_unpublished": max((lag["unpublished"] for lag in during), default=None),
        "relay_max_age_s": max(ages, default=0.0) if during else None,
        "relay_caught_up_s": caught_up,
    }


def _windows(m: Measurement, width: float, lags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per window of intended send time: its figures, and the relay's lag sampled in it."""
    rows = []
    for index, window in m.windows.items():
        start, end = index * width, (index + 1) * width
        sampled = [lag for lag in lags if start <= lag["t_s"] < end]
        last = sampled[-1] if sampled else {"unpublished": None, "oldest_age_s": None}
        rows.append(
            {
                "from_s": round(start, 3),
                **window.summary(),
                "unpublished": last["unpublished"],
                "oldest_age_s": last["oldest_age_s"],
            }
        )
    return rows


def _add_notes(
    result: PhaseResult, m: Measurement, count: SaleCount, planned_s: float, caught_up: float | None
) -> None:
    if planned_s > HOLD_TTL_SECONDS:
        result.notes.append(
            f"at this rate the sale lasts {planned_s:,.0f} s, longer than a hold "
            f"({HOLD_TTL_SECONDS} s): the first holds expire before the last tickets sell, so "
            "exactly N held can't be met"
        )
    if count.expired:
        result.notes.append(f"{count.expired:,} holds expired during the sale")
    if not result.summary["sold_out"]:
        result.notes.append("never sold out: every request due was sent (failures ate the margin)")
    if caught_up is None:
        result.notes.append(f"the relay had not published everything {RELAY_PATIENCE:g} s after")
    lag_p99 = float(latency_summary(m.lag)["p99_ms"])
    if lag_p99 > GENERATOR_LAG_LIMIT_MS:
        result.notes.append(
            f"the load generator itself sent late (p99 {lag_p99} ms): short of CPU, it is part "
            "of what was measured"
        )
