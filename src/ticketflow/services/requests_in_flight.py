"""Background work gives way to buyers: while a process answers many requests at once, its outbox
relay and event consumers wait for a lull before their next round, for at most a bounded time.

A flash sale's burst lands thousands of bookings on each worker within a second; publishing and
consuming their events meanwhile took a quarter of the app's CPU in that window (py-spy on the
benchmark's burst), every bit of it delaying somebody's answer. The events are not lost, only
published a little later: at least one round runs every `patience` seconds however busy the
process is, so the relay's lag stays bounded, and once the burst is answered they catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class RequestsInFlight:
    def __init__(self, busy_above: int, patience_seconds: float) -> None:
        """`busy_above`: requests in flight beyond which background rounds wait (0: never wait);
        `patience_seconds`: the longest a round waits."""
        self._busy_above, self._patience = busy_above, patience_seconds
        self._count = 0
        self._lull = asyncio.Event()
        self._lull.set()
        # Told True when the process becomes busy and False when it calms down again.
        self.on_busy_change: Callable[[bool], None] | None = None

    @property
    def count(self) -> int:
        return self._count

    def started(self) -> None:
        self._count += 1
        if self._busy_above and self._count == self._busy_above + 1:
            self._lull.clear()
            if self.on_busy_change is not None:
                self.on_busy_change(True)

    def finished(self) -> None:
        self._count -= 1
        if self._busy_above and self._count == self._busy_above:
            self._lull.set()
            if self.on_busy_change is not None:
                self.on_busy_change(False)

    async def lull(self) -> None:
        """Return once requests in flight are `busy_above` or fewer, or after the patience."""
        if self._lull.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._patience):
                await self._lull.wait()
