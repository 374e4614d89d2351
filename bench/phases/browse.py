"""`browse`: GET /events/{id} for every event seeded so far, and every fifth request GET /events,
closed loop. The cache hit rate is counted from each answer's `X-Cache: hit|miss` header (exact,
whichever worker answered); failing that, from the app's /metrics counters; else "n/a"."""

from __future__ import annotations

from bench.app_metrics import cache_counters, hit_rate
from bench.context import Context, PhaseResult
from bench.phases.common import finish, measured
from bench.requests import BrowseRequests, Outcome


async def browse(context: Context) -> PhaseResult:
    config = context.config
    if not context.event_ids:
        await context.new_sale(config.tickets, title="Bench browse")
    requests = BrowseRequests(tuple(context.event_ids))
    job = context.job(
        mode="closed", requests=requests, connections=config.connections, duration=config.duration
    )
    base_url = context.app.running.base_url
    before = await cache_counters(base_url)
    m = await context.drive(job, f"browse: {len(context.event_ids)} events and the list")
    after = await cache_counters(base_url)
    hits, misses = m.cache_answers.get("hit", 0), m.cache_answers.get("miss", 0)
    if hits + misses:
        rate: float | None = hits / (hits + misses)
        source = f"X-Cache headers ({hits:,} hit, {misses:,} miss of {m.total:,} answers)"
    else:
        rate = hit_rate(before, after)
        source = "/metrics counters" if rate is not None else "n/a"
    result = PhaseResult(
        "browse",
        summary={
            "req_per_s": round(m.count(Outcome.OK) / m.elapsed),  # answered 200 only
            "errors": m.count(Outcome.ERROR),
            "timeouts": m.count(Outcome.TIMEOUT),
            "cache_hit_rate": round(rate, 4) if rate is not None else "n/a",
        },
        outcomes=m.outcomes(),
        details={**measured(m), "events": len(context.event_ids), "cache_hit_rate_from": source},
    )
    if rate is None:
        result.notes.append(
            "cache hit rate n/a: no X-Cache header on the answers and no "
            "ticketflow_cache_{hits,misses}_total on /metrics (see bench/app_metrics.py)"
        )
    elif hits + misses and hits + misses < m.total:
        result.notes.append(f"only {hits + misses:,} of {m.total:,} answers had X-Cache")
    return await finish(context, result)
