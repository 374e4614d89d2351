"""Background jobs every app process runs: the hold sweeper and the payment reconciler.

Each is safe with any number of processes running it at once (conditional updates), so there is
no leader to elect and a killed process leaves nothing that another one won't finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ticketflow import metrics
from ticketflow.adapters.idempotency_store import IdempotencyKeys
from ticketflow.domain.commands import ReconcilePayments, ReleaseExpiredHolds
from ticketflow.services.messagebus import MessageBus

log = logging.getLogger(__name__)


async def sweep_once(bus: MessageBus) -> int:
    """Release every hold due now, batch by batch, and forget expired idempotency keys."""
    released = 0
    batch = bus.deps.settings.sweep_batch_size
    while True:
        count: int = await bus.handle(ReleaseExpiredHolds(batch_size=batch))
        released += count
        metrics.HOLDS_EXPIRED.inc(count)
        if count < batch:
            break
    async with IdempotencyKeys.own_transaction(bus.engine) as keys:
        await keys.purge_expired(bus.deps.clock.now())
    return released


async def reconcile_once(bus: MessageBus) -> int:
    """Settle payments left pending (or refunds left unfinished) by a crash."""
    settled: int = await bus.handle(ReconcilePayments())
    return settled


async def run_periodically(
    name: str,
    job: Callable[[MessageBus], Awaitable[int]],
    bus: MessageBus,
    interval: float,
    lull: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `job` forever every `interval` seconds (each round after `lull()`, if given: see
    services/requests_in_flight.py); a failed round is logged and retried."""
    while True:
        if lull is not None:
            await lull()
        try:
            done = await job(bus)
            if done:
                log.info("%s: %d done", name, done)
        except Exception:
            log.exception("%s failed; retrying next interval", name)
        await asyncio.sleep(interval)
