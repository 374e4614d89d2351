"""The hold sweeper: returns expired holds to sale, in every app process, safely at once."""

from __future__ import annotations

import asyncio
import logging

from ticketflow.domain.commands import ReleaseExpiredHolds
from ticketflow.services.messagebus import MessageBus

log = logging.getLogger(__name__)


async def sweep_once(bus: MessageBus) -> int:
    """Release every hold due now, batch by batch; the number released."""
    released = 0
    batch = bus.deps.settings.sweep_batch_size
    while True:
        count: int = await bus.handle(ReleaseExpiredHolds(batch_size=batch))
        released += count
        if count < batch:
            return released


async def run_sweeper(bus: MessageBus) -> None:
    """Sweep forever at the configured interval; a failed sweep is logged and retried."""
    while True:
        try:
            released = await sweep_once(bus)
            if released:
                log.info("released %d expired holds", released)
        except Exception:
            log.exception("hold sweep failed; retrying next interval")
        await asyncio.sleep(bus.deps.settings.sweep_interval_seconds)
