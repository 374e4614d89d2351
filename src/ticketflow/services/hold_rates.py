"""How fast the booking engine serves holds, per event: what a waiting room on "auto" admits a
fraction of. Measured per second of the engine's work (holds of a batch over the time its
transaction took), not per second of the clock, so a room admitting slowly does not measure its
own slowness and slow down further."""

from __future__ import annotations

from uuid import UUID

WEIGHT = 0.2  # of each new batch in the moving average
KEPT = 10_000  # a bound, not an eviction policy: events on sale at once are few


class HoldRates:
    def __init__(self) -> None:
        self._per_second: dict[UUID, float] = {}

    def served(self, event_id: UUID, holds: int, seconds: float) -> None:
        if holds < 1 or seconds <= 0:
            return
        rate = holds / seconds
        had = self._per_second.get(event_id)
        if had is None and len(self._per_second) >= KEPT:
            self._per_second.clear()
        self._per_second[event_id] = rate if had is None else had + WEIGHT * (rate - had)

    def per_second(self, event_id: UUID) -> float | None:
        return self._per_second.get(event_id)
