"""What an instance does last when it is asked to stop (SIGTERM): one bounded outbox relay round,
so events committed since its last round are published and the stored position moves past them
before the process exits, instead of waiting for another instance's next round."""

from __future__ import annotations

import asyncio
import logging

from ticketflow.services.outbox_relay import OutboxRelay

log = logging.getLogger(__name__)

# The share of the shutdown grace period the last relay round may take: the rest is for the
# requests still in flight and for closing connections.
FLUSH_SHARE_OF_GRACE = 0.25


async def flush_outbox(relay: OutboxRelay, grace_seconds: float) -> int:
    """Publish what is pending, within a quarter of the grace period; the number published.

    Best effort by design: a round cut short or failing (Redis or the database gone) loses
    nothing, since the position only moves after a publish and any relay resumes from it.
    """
    try:
        return await asyncio.wait_for(relay.relay_pending(), grace_seconds * FLUSH_SHARE_OF_GRACE)
    except Exception:  # whatever went wrong, the rest of the shutdown must still run
        log.warning("last outbox relay round at shutdown did not finish", exc_info=True)
        return 0


async def stop_background_jobs(tasks: list[asyncio.Task[None]], patience: float) -> None:
    """Cancel the background jobs and wait for them, asking again while any still runs.

    Asking again is not superstition: on Python 3.11, `asyncio.wait_for` (used inside the
    database pool and redis-py) can swallow a cancellation that lands as its inner call
    completes, and a job looping fast then never stops; waiting for it once hung a shutdown.
    """
    deadline = asyncio.get_running_loop().time() + patience
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            log.warning("%d background jobs did not stop within %ss", len(pending), patience)
            return
        _, pending = await asyncio.wait(pending, timeout=min(left, 0.5))
