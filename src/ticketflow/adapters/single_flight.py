"""Single flight: concurrent callers asking the same question share one answer in flight.

Under a flash sale thousands of requests notice together that a cached answer lapsed (a catalog
copy, a sold-out mark, the revocation cache); without this, each would send its own query.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """`call()`'s answer, shared with every caller of `key` while it runs. A caller that
        is cancelled leaves the call running for the others."""
        return await asyncio.shield(self.start(key, call))

    def start(self, key: K, call: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        """The call for `key` in flight, started now if none is: for a caller that answers
        from a stale copy meanwhile and lets the call refresh it."""
        future = self._calls.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._calls[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return future

    def _forget(self, key: K, done: asyncio.Future[V]) -> None:
        if self._calls.get(key) is done:
            del self._calls[key]
        if not done.cancelled():
            done.exception()  # retrieved: a refresh nobody awaited fails quietly, not unheard
