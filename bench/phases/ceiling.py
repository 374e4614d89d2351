"""`ceiling`: GET /health, closed loop: the most this HTTP stack answers here, with the same load
generator, connections and duration as the other closed-loop phases."""

from __future__ import annotations

from bench.context import Context, PhaseResult
from bench.phases.common import finish, measured
from bench.requests import HealthRequests, Outcome


async def ceiling(context: Context) -> PhaseResult:
    config = context.config
    job = context.job(
        mode="closed",
        requests=HealthRequests(),
        connections=config.connections,
        duration=config.duration,
    )
    m = await context.drive(job, "ceiling: GET /health")
    result = PhaseResult(
        "ceiling",
        summary={
            "req_per_s": round(m.count(Outcome.OK) / m.elapsed),  # answered 200 only
            "errors": m.count(Outcome.ERROR),
            "timeouts": m.count(Outcome.TIMEOUT),
        },
        outcomes=m.outcomes(),
        details=measured(m),
    )
    return await finish(context, result)
