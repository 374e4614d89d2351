"""`browse`: GET /events/{id} for every event seeded so far, and every fifth request GET /events,
closed loop. The cache hit rate is counted from each answer's `X-Cache: hit|miss` header (exact,
whichever worker answered); failing that, from the app's /metrics counters; else "n/a".

With `--browse-via nginx` the load goes through nginx configured as `make cluster` runs it, with
its micro-cache of these reads (bench/nginx_front.py); what nginx answered itself is counted from
its access log; and the hit rate is then the share of answers that did not wait on a read,
by nginx or by the app (its /metrics counters).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.app_metrics import cache_counters, hit_rate
from bench.context import Context, PhaseResult
from bench.nginx_front import ANSWERED_BY_NGINX, nginx_in_front
from bench.phases.common import finish, measured
from bench.requests import BrowseRequests, Outcome
from bench.worker import Job


async def browse(context: Context) -> PhaseResult:
    config = context.config
    if not context.event_ids:
        await context.new_sale(config.tickets, title="Bench browse")
    requests = BrowseRequests(tuple(context.event_ids))
    job = context.job(
        mode="closed", requests=requests, connections=config.connections, duration=config.duration
    )
    reads = f"{len(context.event_ids)} events and the list"
    if config.browse_via != "nginx":
        return await finish(
            context, await measured_reads(context, job, "browse", f"browse: {reads}")
        )
    async with nginx_in_front(context.app.running.port, context.app.log_dir) as nginx:
        logged_before = nginx.log_size()
        result = await measured_reads(
            context,
            dataclasses.replace(job, port=nginx.port),
            "browse",
            f"browse through nginx: {reads}",
        )
        statuses = nginx.cache_statuses(since=logged_before)
    answered = sum(n for status, n in statuses.items() if status != "-")  # "-": warm-up /health
    by_nginx = sum(statuses[status] for status in ANSWERED_BY_NGINX)
    result.summary["via"] = "nginx"
    result.summary["proxy_cache_hit_rate"] = round(by_nginx / answered, 4) if answered else "n/a"
    result.details["proxy_cache_statuses"] = dict(statuses.most_common())
    result.notes.append(
        f"through nginx's micro-cache: {by_nginx:,} of {answered:,} answered by nginx, "
        f"{answered - by_nginx:,} by the app"
    )
    # An answer nginx kept carries the X-Cache of the app's answer it kept: a hit is counted
    # instead as an answer for which nothing waited on a read, by nginx or by the app.
    lookups = result.details.get("app_cache_lookups")
    if lookups and answered:
        result.summary["cache_hit_rate"] = round(1 - lookups["misses"] / answered, 4)
        result.details["cache_hit_rate_from"] = (
            f"nginx's access log and the app's /metrics: {lookups['misses']:,} of {answered:,} "
            "answers waited on a read"
        )
    return await finish(context, result)


async def measured_reads(context: Context, job: Job, name: str, label: str) -> PhaseResult:
    """Phase `name`'s result of the cached reads `job` sends: answered-200 req/s, failures, and
    the cache hit rate (X-Cache headers, else the app's /metrics counters)."""
    base_url = context.app.running.base_url
    before = await cache_counters(base_url)
    m = await context.drive(job, label)
    after = await cache_counters(base_url)
    hits, misses = m.cache_answers.get("hit", 0), m.cache_answers.get("miss", 0)
    if hits + misses:
        rate: float | None = hits / (hits + misses)
        source = f"X-Cache headers ({hits:,} hit, {misses:,} miss of {m.total:,} answers)"
    else:
        rate = hit_rate(before, after)
        source = "/metrics counters" if rate is not None else "n/a"
    details: dict[str, Any] = {
        **measured(m),
        "events": len(context.event_ids),
        "cache_hit_rate_from": source,
    }
    if before is not None and after is not None:  # the app's own lookups, all its workers
        details["app_cache_lookups"] = {
            "hits": round(after.hits - before.hits),
            "misses": round(after.misses - before.misses),
        }
    result = PhaseResult(
        name,
        summary={
            "req_per_s": round(m.count(Outcome.OK) / m.elapsed),  # answered 200 only
            "errors": m.count(Outcome.ERROR),
            "timeouts": m.count(Outcome.TIMEOUT),
            "cache_hit_rate": round(rate, 4) if rate is not None else "n/a",
        },
        outcomes=m.outcomes(),
        details=details,
    )
    if rate is None:
        result.notes.append(
            "cache hit rate n/a: no X-Cache header on the answers and no "
            "ticketflow_cache_{hits,misses}_total on /metrics (see bench/app_metrics.py)"
        )
    elif hits + misses and hits + misses < m.total:
        result.notes.append(f"only {hits + misses:,} of {m.total:,} answers had X-Cache")
    return result
