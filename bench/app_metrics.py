"""What the app says about itself: cache hits and misses from its Prometheus `/metrics`.

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


@dataclass(frozen=True)
class CacheCounters:
    hits: float
    misses: float


async def cache_counters(base_url: str) -> CacheCounters | None:
    """The app's cache counters now, or None if it exposes none."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        try:
            answer = await client.get("/metrics")
        except httpx.HTTPError:
            return None
    if answer.status_code != 200:
        return None
    totals = {HITS: 0.0, MISSES: 0.0}
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
    if seen != set(totals):
        return None
    return CacheCounters(totals[HITS], totals[MISSES])


def hit_rate(before: CacheCounters | None, after: CacheCounters | None) -> float | None:
    """Hits / lookups between two readings; None when unknown (no counters, or no lookups)."""
    if before is None or after is None:
        return None
    hits, misses = after.hits - before.hits, after.misses - before.misses
    if hits < 0 or misses < 0 or hits + misses == 0:
        return None
    return hits / (hits + misses)
