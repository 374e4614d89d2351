"""How fast the booking engine serves holds: what a waiting room on "auto" admits a fraction of.

Measured per second of the engine's work (holds of a batch over the time its transaction took),
not per second of the clock, so a room admitting slowly does not measure its own slowness and
slow down further. And weighted by holds (the holds of recent batches over their seconds), not
an average of each batch's rate: a room admitting few makes batches of one, whose rate says how
long one transaction takes, not how many holds the engine can serve.

An event's own measurement starts empty, so a room would open at its floor and climb slowly.
It starts instead from the engine's, measured over every event's batches, and the event's own
takes over as its holds accumulate (`rate_to_admit_from`).

That measure alone cannot find the engine's capacity from below: holds come as fast as the
room admits them, and once the room admits fewer than the engine could serve, batches shrink
to a hold or two, whose rate is one transaction's (~50/s on a loaded event loop), so 75% of it
admits fewer still: the room settled at 48-51 admissions/s where the engine served 1,000-1,200
holds/s (the room benchmark, sixth session). So the rate an "auto" room admits at is paced
by what its holds experience (`pace`): it starts from the measure above, and each second moves
by the holds served since: more than 1% of them slower than `SLOW_HOLD` (from their request
reaching the batcher to their commit) halves it, down to the measure above at most; all prompt
raises it by a quarter, up to the most the engine was ever measured to serve. Probing up and
backing off, as TCP finds a path's capacity: the room admits as fast as holds are served
promptly, which is its point."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

# Each new batch ages the earlier ones by this much: the sums remember roughly the last
# 1 / (1 - KEPT_PER_BATCH) batches, a recent window that follows a changing engine.
KEPT_PER_BATCH = 0.99
# Holds of its own after which an event's measurement is trusted alone; before, it is mixed
# with the engine's in proportion.
TRUSTED_AFTER_HOLDS = 1_000
KEPT = 10_000  # a bound, not an eviction policy: events on sale at once are few
# A hold slower than this (queued and committed) counts against an "auto" room's pace: half the
# 100 ms an admitted buyer's booking is meant to take, the rest left for HTTP and the event loop.
SLOW_HOLD = 0.05
SLOW_SHARE = 0.01  # more than this share of a second's holds slow: the pace is halved
PACED_EVERY = timedelta(seconds=1)
BACK_OFF, PROBE = 0.5, 1.25


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


@dataclass
class Pace:
    """An "auto" room's holds a second (before its fraction), last moved `at`; and its holds
    served since, how many of them slow (module docstring)."""

    per_second: float
    at: datetime
    holds: int = 0
    slow: int = 0


def paced(pace: float, holds: int, slow: int, best: float, served: float) -> float:
    """The pace after a second in which `holds` were served and `slow` of the batches' requests
    were slow: halved if more than SLOW_SHARE of `holds`, but never below the rate the event's
    holds are `served` at (slow holds on an event loop busy with other work are not the room's
    doing, and admitting slower than holds are served would only lengthen the line); else raised
    by a quarter, to `best` at most. Unmoved by a second without holds: it says nothing."""
    if holds == 0:
        return pace
    if slow > SLOW_SHARE * holds:
        return max(served, pace * BACK_OFF)
    return max(pace, min(best, pace * PROBE))


class HoldRates:
    def __init__(self) -> None:
        self._engine = Throughput()
        self._events: dict[UUID, Throughput] = {}
        self._paces: dict[UUID, Pace] = {}
        self._best = 0.0  # the most holds a second the engine was measured to serve

    def served(self, event_id: UUID, holds: int, seconds: float, slow: int = 0) -> None:
        """A batch of `event_id`'s committed `holds` in `seconds` of the engine's work, `slow`
        of them slower than SLOW_HOLD."""
        if holds < 1 or seconds <= 0:
            return
        if (pace := self._paces.get(event_id)) is not None:
            pace.holds += holds
            pace.slow += slow
        own = self._events.get(event_id)
        if own is None:
            if len(self._events) >= KEPT:
                self._events.clear()
            own = self._events[event_id] = Throughput()
        own.add(holds, seconds)
        self._engine.add(holds, seconds)
        self._best = max(self._best, self._engine.per_second or 0.0)

    def per_second(self, event_id: UUID) -> float | None:
        """The holds a second the engine serves for `event_id` (module docstring); None
        before any batch of any event was measured."""
        return rate_to_admit_from(self._events.get(event_id), self._engine)

    def pace(self, event_id: UUID, now: datetime) -> float | None:
        """The holds a second an "auto" room of `event_id` admits a fraction of (module
        docstring): from `per_second` at first, then moved once a second by its holds'
        experience. None while nothing was ever measured."""
        pace = self._paces.get(event_id)
        if pace is None:
            start = self.per_second(event_id)
            if start is None:
                return None
            if len(self._paces) >= KEPT:
                self._paces.clear()
            pace = self._paces[event_id] = Pace(start, now)
        elif now - pace.at >= PACED_EVERY:
            best = max(self._best, pace.per_second)
            served = self.per_second(event_id) or 0.0
            pace.per_second = paced(pace.per_second, pace.holds, pace.slow, best, served)
            pace.at, pace.holds, pace.slow = now, 0, 0
        return pace.per_second
