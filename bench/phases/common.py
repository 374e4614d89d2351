"""What every phase reports the same way: CPU shares, the generator's own lag, what went wrong,
and the invariant checks over the whole database."""

from __future__ import annotations

from typing import Any

from bench.config import CORES
from bench.context import Context, PhaseResult
from bench.invariants import check_database
from bench.requests import BookingRequests
from bench.seed import Sale
from bench.stats import Measurement, latency_summary
from bench.worker import Job

APP_LOG_LINES = 30


def open_loop_bookings(
    context: Context, sale: Sale, rate: int, duration: float, **options: Any
) -> Job:
    """Bookings of one ticket each for `sale`, due at `rate` per second for `duration` seconds,
    over the open-loop connections, each with a fresh key (options: the Job's own)."""
    config = context.config
    requests = BookingRequests(
        sale.event_id, sale.ticket_type_id, context.tokens, idempotency_keys=config.idempotency_keys
    )
    return context.job(
        mode="open",
        requests=requests,
        connections=config.open_connections,
        rate=rate,
        duration=duration,
        **options,
    )


def measured(m: Measurement) -> dict[str, Any]:
    """Details of a measurement worth keeping next to its headline figures."""
    lag = latency_summary(m.lag) if m.lag.get_total_count() else None
    return {
        "connections": m.connections,
        "requests": m.total,
        "elapsed_s": round(m.elapsed, 3),
        "cpu": m.cpu.as_dict(CORES),
        # The load generator's own accounting (its processes, over the measured window only).
        "load_generator_cores": round(m.client_cores, 3),
        "load_generator_share_of_machine": round(m.client_cores / CORES, 3),
        "generator_send_lag": lag,
        "error_kinds": m.error_kinds,
    }


async def finish(context: Context, result: PhaseResult) -> PhaseResult:
    """Invariants 1-2 and idempotency over everything done so far (DESIGN.md); and when requests
    failed, the end of the app's log, where it says why."""
    result.checks.update(
        await check_database(
            context.bus.engine, every_booking_keyed=context.config.idempotency_keys
        )
    )
    steps = result.details.get("steps", [result.details])
    if any(step.get("details", step).get("error_kinds") for step in steps):
        server = context.app.server
        if server is not None:
            result.details["app_log_tail"] = server.log_tail(APP_LOG_LINES).splitlines()
    return result
