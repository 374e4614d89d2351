"""Copies of values kept in this process's memory, each as of a known moment.

A read answers from its copy while the copy is younger than `fresh_for` (by the injected clock),
and once it is past a quarter of that, starts one renewal (per key, however many readers) and
still answers from the copy meanwhile. Under steady reads a copy is renewed before it lapses, so
readers never wait on I/O; a copy `fresh_for` old is never answered: the reader waits for the
renewal. That is the staleness bound, whatever the renewal reads from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.single_flight import SingleFlight

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Early: on an event loop saturated with readers, each step of a renewal (a Redis round trip, a
# pool checkout, a query) waits a whole turn of the loop behind them. Started at half, renewals
# were at times still in flight at the lapse, and every reader of that moment waited (a miss).
RENEW_AFTER_SHARE_OF_FRESHNESS = 0.25
MAX_KEYS = 10_000  # a bound, not an eviction policy: events and pages read are few


@dataclass(frozen=True)
class Kept(Generic[V]):
    value: V
    as_of: float  # clock seconds: the value was current then (the read behind it began)


class ProcessCopies(Generic[K, V]):
    def __init__(
        self, clock: Clock, fresh_for: float, renew: Callable[[K], Awaitable[Kept[V]]]
    ) -> None:
        self._clock, self._fresh_for, self._renew = clock, fresh_for, renew
        self._kept: dict[K, Kept[V]] = {}
        # Keyed by generation too: after a `forget`, readers start a renewal of their own
        # instead of joining one that began before the change.
        self._renewing: SingleFlight[tuple[K, int], Kept[V]] = SingleFlight()
        self._generation = 0
        self._background: set[asyncio.Future[Kept[V]]] = set()

    async def get(self, key: K) -> tuple[V, bool]:
        """The value, and whether this process's copy answered it (nothing was waited for)."""
        kept = self._kept.get(key)
        if kept is not None:
            age = self._clock.now().timestamp() - kept.as_of
            if age < self._fresh_for:
                if age >= self._fresh_for * RENEW_AFTER_SHARE_OF_FRESHNESS:
                    self._renew_in_background(key)
                return kept.value, True
        renewed = await self._renewing.run((key, self._generation), self._renewal(key))
        return renewed.value, False

    def forget(self, key: K) -> None:
        """The value changed: the next read renews it, and no renewal begun before is kept."""
        self._kept.pop(key, None)
        self._generation += 1

    def forget_all(self) -> None:
        self._kept.clear()
        self._generation += 1

    async def settled(self) -> None:
        """Once the renewals started in the background have finished (for tests)."""
        await asyncio.gather(*self._background, return_exceptions=True)

    def _renew_in_background(self, key: K) -> None:
        renewal = self._renewing.start((key, self._generation), self._renewal(key))
        if renewal not in self._background:  # the readers meanwhile find it in flight
            self._background.add(renewal)
            renewal.add_done_callback(self._background.discard)

    def _renewal(self, key: K) -> Callable[[], Awaitable[Kept[V]]]:
        generation = self._generation

        async def renew_and_keep() -> Kept[V]:
            renewed = await self._renew(key)
            if generation == self._generation:
                previous = self._kept.get(key)
                if previous is not None and previous.value == renewed.value:
                    # The same object as before: what callers derived from it (a rendered
                    # body, its ETag) stays theirs to reuse.
                    renewed = Kept(previous.value, renewed.as_of)
                if len(self._kept) >= MAX_KEYS:
                    self._kept.clear()
                self._kept[key] = renewed
            return renewed

        return renew_and_keep
