"""Waiting for something another process or connection does, with a deadline: polling a
condition, never sleeping as synchronization. And the opposite: keeping the loop busy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.05


async def eventually(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll `condition` until it holds; fail once `within` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {within}s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)  # poll interval, not synchronization


def hold_the_loop(seconds: float) -> None:
    """CPU-bound work that keeps the event loop from turning for `seconds`, as an overloaded
    process's does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
