"""`pages`: GET /events/{id}, the public event page, for every event seeded so far, closed loop,
driven as `browse` drives the API's read of it (same connections, duration, load generator). The
headline is its req/s against browse's in the same invocation (issue 18: at least half)."""

from __future__ import annotations

from bench.context import Context, PhaseResult
from bench.phases.browse import measured_reads
from bench.phases.common import finish
from bench.requests import EventPageRequests, Outcome


async def pages(context: Context) -> PhaseResult:
    config = context.config
    if not context.event_ids:
        await context.new_sale(config.tickets, title="Bench pages")
    job = context.job(
        mode="closed",
        requests=EventPageRequests(tuple(context.event_ids)),
        connections=config.connections,
        duration=config.duration,
    )
    label = f"pages: the web page of {len(context.event_ids)} events"
    result = await measured_reads(context, job, "pages", label)
    ok = result.outcomes.get(str(Outcome.OK), {})
    result.summary["p50_ms"] = ok.get("p50_ms", "n/a")
    result.summary["p99_ms"] = ok.get("p99_ms", "n/a")
    result.summary["of_browse"] = _of_browse(context, result)
    return await finish(context, result)


def _of_browse(context: Context, result: PhaseResult) -> float | str:
    """pages req/s ÷ browse req/s, when browse measured the app itself in this invocation."""
    browse = context.results.get("browse")
    if browse is None or not isinstance(browse.summary.get("req_per_s"), int | float):
        result.notes.append("of_browse n/a: browse did not run (or measure) in this invocation")
        return "n/a"
    if browse.summary.get("via") == "nginx":
        result.notes.append("of_browse n/a: browse went through nginx's micro-cache, pages not")
        return "n/a"
    if not browse.summary["req_per_s"]:
        return "n/a"
    return round(float(result.summary["req_per_s"]) / float(browse.summary["req_per_s"]), 4)
