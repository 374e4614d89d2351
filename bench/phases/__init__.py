"""The phases, by name, in the order they run (`make bench` runs all but `marathon`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import Context, PhaseResult
from bench.phases.browse import browse
from bench.phases.burst import baseline_lock, burst
from bench.phases.ceiling import ceiling
from bench.phases.journey import journey
from bench.phases.marathon import marathon
from bench.phases.pages import pages
from bench.phases.room import room
from bench.phases.soldout import soldout
from bench.phases.sustained import sustained

Phase = Callable[[Context], Awaitable[PhaseResult]]

PHASES: dict[str, Phase] = {
    "ceiling": ceiling,
    "burst": burst,
    "sustained": sustained,
    "soldout": soldout,
    "browse": browse,
    "pages": pages,
    "journey": journey,
    "baseline-lock": baseline_lock,
    "marathon": marathon,
    "room": room,
}
