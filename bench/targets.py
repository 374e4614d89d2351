"""The issue's targets, as ratios from one run (so machine noise cancels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.context import PhaseResult


@dataclass(frozen=True)
class Target:
    name: str
    value: str  # as shown; "n/a" when a phase it needs did not run
    goal: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "goal": self.goal, "met": self.met}


def _ratio(name: str, top: float | None, bottom: float | None, goal: float, pct: bool) -> Target:
    shown_goal = f">= {goal:.0%}" if pct else f">= {goal:g}x"
    if top is None or bottom is None:
        return Target(name, "n/a", shown_goal, None)
    if not bottom:  # e.g. the baseline held nothing at all
        return Target(name, "inf" if top else "n/a", shown_goal, True if top else None)
    ratio = top / bottom
    return Target(name, f"{ratio:.1%}" if pct else f"{ratio:.2f}x", shown_goal, ratio >= goal)


def _get(results: dict[str, PhaseResult], phase: str, figure: str) -> Any:
    result = results.get(phase)
    return result.summary.get(figure) if result else None


def targets(results: dict[str, PhaseResult]) -> list[Target]:
    ceiling = _get(results, "ceiling", "req_per_s")
    holds = _get(results, "burst", "holds_per_s")
    found = [
        _ratio("burst holds/s ÷ ceiling req/s", holds, ceiling, 0.25, pct=True),
        _ratio(
            "soldout req/s ÷ ceiling req/s",
            _get(results, "soldout", "req_per_s"),
            ceiling,
            0.60,
            pct=True,
        ),
        _ratio(
            "engine ÷ baseline-lock holds/s",
            holds,
            _get(results, "baseline-lock", "holds_per_s"),
            5,
            pct=False,
        ),
    ]
    found.append(_sustained(_get(results, "sustained", "best_rate_per_s"), ceiling))
    found += _journey(results.get("journey"))
    found += _marathon(results.get("marathon"))
    # Issue 15: browse at >= 60% of the ceiling, P99 < 100 ms, hit rate >= 95% (issue 5: 90%).
    found.append(
        _ratio(
            "browse req/s ÷ ceiling req/s",
            _get(results, "browse", "req_per_s"),
            ceiling,
            0.6,
            pct=True,
        )
    )
    browse = results.get("browse")
    p99 = browse.outcomes.get("ok", {}).get("p99_ms") if browse else None
    if isinstance(p99, float | int):
        found.append(Target("browse P99 latency", f"{p99} ms", "< 100 ms", p99 < 100))
    else:
        found.append(Target("browse P99 latency", "n/a", "< 100 ms", None))
    rate = _get(results, "browse", "cache_hit_rate")
    if isinstance(rate, float):
        found.append(Target("browse cache hit rate", f"{rate:.1%}", ">= 95%", rate >= 0.95))
    else:
        found.append(Target("browse cache hit rate", "n/a", ">= 95%", None))
    # Issue 18: the event's web page at >= 50% of the API's browse rate, in the same run.
    of_browse = _get(results, "pages", "of_browse")
    found.append(
        _ratio(
            "pages req/s ÷ browse req/s",
            _get(results, "pages", "req_per_s"),
            _get(results, "browse", "req_per_s") if isinstance(of_browse, float) else None,
            0.5,
            pct=True,
        )
    )
    burst = results.get("burst")
    if burst is None or "drain_s" not in burst.summary:  # not run, or could not measure
        found += [Target(name, "n/a", goal, None) for name, goal in _BURST_GOALS]
        return found
    s = burst.summary
    found += [
        Target("burst drain time", f"{s['drain_s']:.2f} s", "< 3 s", s["drain_s"] < 3),
        Target(
            "burst: exactly T held (stored, and answered 201)",
            f"{s['stored_held']:,} stored, {s['held']:,} answered, of {s['tickets']:,}",
            "exactly T",
            bool(s["exactly_T_held"]),
        ),
        Target("burst: errors", str(s["errors"]), "0", s["errors"] == 0),
        Target("burst: timeouts", str(s["timeouts"]), "0", s["timeouts"] == 0),
    ]
    return found


# Issue 15 target 5: a fixed rate, or on a slow hour of this VM a share of the run's own ceiling.
SUSTAINED_RATE, SUSTAINED_SHARE = 2_500, 0.35


def _sustained(best: Any, ceiling: Any) -> Target:
    name = "sustained best rate (P99 < 100 ms, 0 errors)"
    goal = f">= {SUSTAINED_RATE:,}/s, or >= {SUSTAINED_SHARE:.0%} of ceiling req/s"
    if not isinstance(best, int):
        return Target(name, "n/a", goal, None)
    if not isinstance(ceiling, int | float) or not ceiling:
        value = f"{best:,}/s (no ceiling in this run)"
        return Target(name, value, goal, True if best >= SUSTAINED_RATE else None)
    share = best / ceiling
    value = f"{best:,}/s = {share:.1%} of ceiling {ceiling:,} req/s"
    return Target(name, value, goal, best >= SUSTAINED_RATE or share >= SUSTAINED_SHARE)


# Issue 15 target 6, a moonshot: reported whether met or missed.
MARATHON_SECONDS = 300
_MARATHON_GOALS = (
    ("marathon: sold N in < 5 min", f"all N, in < {MARATHON_SECONDS} s"),
    ("marathon: every window P99 < 250 ms", "every window"),
    ("marathon: exactly N held (stored, and answered 201)", "exactly N"),
)


def _marathon(result: PhaseResult | None) -> list[Target]:
    if result is None or "exactly_N_held" not in result.summary:  # not run, or could not measure
        return [Target(name, "n/a", goal, None) for name, goal in _MARATHON_GOALS]
    s = result.summary
    (sold, sold_goal), (windows, windows_goal), (exact, exact_goal) = _MARATHON_GOALS
    seconds = s["sell_out_s"]
    sold_all = s["held"] == s["tickets"] and seconds is not None
    budget = s["p99_budget_ms"]
    return [
        Target(
            sold,
            f"{s['held']:,} of {s['tickets']:,} "
            + (f"in {seconds:,.1f} s ({s['holds_per_s']:,} holds/s)" if sold_all else "(unsold)"),
            sold_goal,
            sold_all and seconds < MARATHON_SECONDS,
        ),
        Target(
            windows.replace("250", f"{budget:g}"),
            f"worst {s['worst_window_p99_ms']} ms; {s['windows_over_budget']} of "
            f"{s['windows']} windows over",
            windows_goal,
            bool(s["windows"]) and s["windows_over_budget"] == 0,
        ),
        Target(
            exact,
            f"{s['stored_held']:,} stored, {s['held']:,} answered, of {s['tickets']:,}",
            exact_goal,
            bool(s["exactly_N_held"]),
        ),
    ]


_JOURNEY_GOALS = (
    ("journey throughput (after the ramp, errors left out)", ">= 1,150 req/s"),
    ("journey average latency", "< 285 ms"),
    ("journey P95 latency", "< 320 ms"),
    ("journey error rate", "<= 0.02%"),
    ("journey: every 201 stored (holds, and paid bookings with their tickets)", "all"),
)
# The checks (bench/journey_checks.py) that say every 201 was stored.
_STORED_CHECKS = ("journey: every 201 hold", "journey: every 201 payment")


def _journey(result: PhaseResult | None) -> list[Target]:
    """Issue 15: a competing design's headline load test, its figures as our goals."""
    if result is None or "avg_ms" not in result.summary:  # not run, or could not measure
        return [Target(name, "n/a", goal, None) for name, goal in _JOURNEY_GOALS]
    s = result.summary
    names = [name for name, _ in _JOURNEY_GOALS]
    goals = [goal for _, goal in _JOURNEY_GOALS]
    # Answered as asked: a shed 503 is an answer, not throughput (the competitor's 1,150 req/s
    # had 0.02% errors, so both readings agree there).
    answered = s["steady_req_per_s"]
    steady = (
        round(answered * (1 - s["error_rate_pct"] / 100)) if isinstance(answered, int) else answered
    )
    throughput = (
        f"{steady:,} req/s answered as asked ({answered:,} with errors; "
        f"{s['req_per_s']:,} over the whole run)"
    )
    stored = [v for name, v in result.checks.items() if name.startswith(_STORED_CHECKS)]
    all_stored = len(stored) == len(_STORED_CHECKS) and set(stored) == {"ok"}
    return [
        Target(
            names[0],
            throughput if isinstance(steady, int) else "n/a",
            goals[0],
            steady >= 1_150 if isinstance(steady, int) else None,
        ),
        Target(names[1], f"{s['avg_ms']} ms", goals[1], s["avg_ms"] < 285),
        Target(names[2], f"{s['p95_ms']} ms", goals[2], s["p95_ms"] < 320),
        Target(names[3], f"{s['error_rate_pct']}%", goals[3], s["error_rate_pct"] <= 0.02),
        Target(
            names[4],
            f"{s['held']:,} holds, {s['paid']:,} payments: " + ("stored" if all_stored else "NOT"),
            goals[4],
            all_stored,
        ),
    ]


_BURST_GOALS = (
    ("burst drain time", "< 3 s"),
    ("burst: exactly T held (stored, and answered 201)", "exactly T"),
    ("burst: errors", "0"),
    ("burst: timeouts", "0"),
)
