"""What the app says about itself, from its Prometheus `/metrics`: cache hits and misses, and
how its hold batches went (holds per transaction, and how long one took).

The browse phase counts hits from each answer's `X-Cache` header first; this is the fallback for
an app that reports them only as counters: `/metrics` serves, in Prometheus text format and summed
over all worker processes (prometheus-client's multiprocess mode), `ticketflow_cache_hits_total`
and `ticketflow_cache_misses_total` (any labels, e.g. `{cache="event"}`, are summed).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class CacheCounters:
    hits: float
    misses: float


async def metric_totals(base_url: str, names: tuple[str, ...]) -> dict[str, float] | None:
    """Each named series summed over its labels (and the worker processes), as `/metrics` says
    now; None if the app serves no metrics or lacks one of them."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        try:
            answer = await client.get("/metrics")
        except httpx.HTTPError:
            return None
    if answer.status_code != 200:
        return None
    totals = dict.fromkeys(names, 0.0)
    seen = set()
    for line in answer.text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in totals:
            # `name{labels} value [timestamp]`: the value is the first field after the labels.
            after_labels = line[line.rindex("}") + 1 :] if "{" in line else line[len(name) :]
            totals[name] += float(after_labels.split()[0])
            seen.add(name)
    return totals if seen == set(totals) else None


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
