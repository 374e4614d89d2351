"""How fast the booking engine serves holds: what a waiting room on "auto" admits a fraction of.

Measured per second of the engine's work (holds of a batch over the time its transaction took),
not per second of the clock, so a room admitting slowly does not measure its own slowness and
slow down further. And weighted by holds (the holds of recent batches over their seconds), not
an average of each batch's rate: a room admitting few makes batches of one, whose rate says how
long one transaction takes, not how many holds the engine can serve.

An event's own measurement starts empty, so a room would open at its floor and climb slowly.
It starts instead from the engine's, measured over every event's batches, and the event's own
takes over as its holds accumulate (`rate_to_admit_from`)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

# Each new batch ages the earlier ones by this much: the sums remember roughly the last
# 1 / (1 - KEPT_PER_BATCH) batches, a recent window that follows a changing engine.
KEPT_PER_BATCH = 0.99
# Holds of its own after which an event's measurement is trusted alone; before, it is mixed
# with the engine's in proportion.
TRUSTED_AFTER_HOLDS = 1_000
KEPT = 10_000  # a bound, not an eviction policy: events on sale at once are few


@dataclass
class Throughput:
    """Holds served and the seconds of engine work they took, over recent batches; and how
    many holds were ever measured (the evidence behind the rate)."""

    holds: float = 0.0
    seconds: float = 0.0
    measured_holds: int = 0

    def add(self, holds: int, seconds: float) -> None:
        self.holds = self.holds * KEPT_PER_BATCH + holds
        self.seconds = self.seconds * KEPT_PER_BATCH + seconds
        self.measured_holds += holds

    @property
    def per_second(self) -> float | None:
        return self.holds / self.seconds if self.seconds > 0 else None


def rate_to_admit_from(own: Throughput | None, engine: Throughput) -> float | None:
    """The event's own rate once it has `TRUSTED_AFTER_HOLDS` behind it, the engine's before
    anything of its own, and in between a mix weighted by how many of its holds were measured."""
    engine_rate = engine.per_second
    own_rate = own.per_second if own else None
    if own is None or own_rate is None:
        return engine_rate
    trust = min(1.0, own.measured_holds / TRUSTED_AFTER_HOLDS)
    if engine_rate is None or trust == 1.0:
        return own_rate
    return trust * own_rate + (1 - trust) * engine_rate


class HoldRates:
    def __init__(self) -> None:
        self._engine = Throughput()
        self._events: dict[UUID, Throughput] = {}

    def served(self, event_id: UUID, holds: int, seconds: float) -> None:
        """A batch of `event_id`'s committed `holds` in `seconds` of the engine's work."""
        if holds < 1 or seconds <= 0:
            return
        own = self._events.get(event_id)
        if own is None:
            if len(self._events) >= KEPT:
                self._events.clear()
            own = self._events[event_id] = Throughput()
        own.add(holds, seconds)
        self._engine.add(holds, seconds)

    def per_second(self, event_id: UUID) -> float | None:
        """The holds a second the engine serves for `event_id` (module docstring); None
        before any batch of any event was measured."""
        return rate_to_admit_from(self._events.get(event_id), self._engine)
