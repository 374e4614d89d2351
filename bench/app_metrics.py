"""What the app says about itself, from its Prometheus `/metrics`: cache hits and misses, how
its hold batches went (holds per transaction, and how long one took), and how long one route's
answers took as the app measured them (from the request's arrival in the app to its answer: no
load generator's lag in it).

The browse phase counts hits from each answer's `X-Cache` header first; this is the fallback for
an app that reports them only as counters: `/metrics` serves, in Prometheus text format and summed
over all worker processes (prometheus-client's multiprocess mode), `ticketflow_cache_hits_total`
and `ticketflow_cache_misses_total` (any labels, e.g. `{cache="event"}`, are summed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

HITS = "ticketflow_cache_hits_total"
MISSES = "ticketflow_cache_misses_total"
# The hold batcher's group commit (count of batches, holds in them, their transactions' time).
BATCH_SERIES = (
    "ticketflow_hold_batch_holds_count",
    "ticketflow_hold_batch_holds_sum",
    "ticketflow_hold_batch_seconds_sum",
)
DURATION_BUCKET = "ticketflow_http_request_duration_seconds_bucket"
LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class CacheCounters:
    hits: float
    misses: float


async def _exposition(base_url: str) -> str | None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        try:
            answer = await client.get("/metrics")
        except httpx.HTTPError:
            return None
    return answer.text if answer.status_code == 200 else None


def samples(exposition: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Each sample of a Prometheus text exposition: its name, labels and value."""
    for line in exposition.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        labels = dict(LABEL.findall(line[: line.rindex("}")])) if "{" in line else {}
        # `name{labels} value [timestamp]`: the value is the first field after the labels.
        after_labels = line[line.rindex("}") + 1 :] if "{" in line else line[len(name) :]
        yield name, labels, float(after_labels.split()[0])


async def metric_totals(
    base_url: str, names: tuple[str, ...], *, missing_is_zero: bool = False
) -> dict[str, float] | None:
    """Each named series summed over its labels (and the worker processes), as `/metrics` says
    now; None if the app serves no metrics or lacks one of them (unless `missing_is_zero`: a
    labelled counter appears only once counted)."""
    exposition = await _exposition(base_url)
    if exposition is None:
        return None
    totals = dict.fromkeys(names, 0.0)
    seen = set()
    for name, _, value in samples(exposition):
        if name in totals:
            totals[name] += value
            seen.add(name)
    return totals if missing_is_zero or seen == set(totals) else None


async def answered_within(
    base_url: str, method: str, route: str, status: int
) -> dict[float, float] | None:
    """How many answers of `status` to `method route` the app has given within each of its
    duration histogram's bounds (seconds; cumulative, summed over the worker processes)."""
    exposition = await _exposition(base_url)
    if exposition is None:
        return None
    wanted = {"method": method, "route": route, "status": str(status)}
    counts: dict[float, float] = {}
    for name, labels, value in samples(exposition):
        if name == DURATION_BUCKET and all(labels.get(k) == v for k, v in wanted.items()):
            bound = float(labels["le"])
            counts[bound] = counts.get(bound, 0.0) + value
    return counts


@dataclass(frozen=True)
class ServerLatency:
    """A route's answers between two readings, as the app timed them."""

    count: int
    within_100ms: float  # the share answered within 100 ms
    p99_at_most_ms: float | None  # the histogram bound under which 99% were answered

    @classmethod
    def between(
        cls, before: dict[float, float] | None, after: dict[float, float] | None
    ) -> ServerLatency | None:
        if not after:
            return None
        grown = {bound: n - (before or {}).get(bound, 0.0) for bound, n in after.items()}
        count = grown.get(float("inf"), 0.0)
        if count <= 0:
            return None
        p99 = min((b for b, n in grown.items() if n >= 0.99 * count), default=None)
        within = max((n for b, n in grown.items() if b <= 0.1), default=0.0)
        return cls(
            round(count),
            round(within / count, 4),
            None if p99 is None or p99 == float("inf") else p99 * 1000,
        )


async def cache_counters(base_url: str) -> CacheCounters | None:
    """The app's cache counters now, or None if it exposes none."""
    totals = await metric_totals(base_url, (HITS, MISSES))
    return CacheCounters(totals[HITS], totals[MISSES]) if totals else None


async def hold_batches(base_url: str) -> dict[str, float] | None:
    """The app's hold batch counters now (batches, holds in them, seconds they took)."""
    return await metric_totals(base_url, BATCH_SERIES)


def batch_figures(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float] | None:
    """Holds per batch and milliseconds per batch transaction between two readings."""
    if before is None or after is None:
        return None
    batches, holds, seconds = (after[name] - before[name] for name in BATCH_SERIES)
    if batches <= 0:
        return None
    return {
        "holds_per_batch": round(holds / batches, 1),
        "batch_ms": round(1000 * seconds / batches, 1),
    }


def hit_rate(before: CacheCounters | None, after: CacheCounters | None) -> float | None:
    """Hits / lookups between two readings; None when unknown (no counters, or no lookups)."""
    if before is None or after is None:
        return None
    hits, misses = after.hits - before.hits, after.misses - before.misses
    if hits < 0 or misses < 0 or hits + misses == 0:
        return None
    return hits / (hits + misses)
