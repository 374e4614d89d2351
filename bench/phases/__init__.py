"""The phases, by name, in the order `make bench` runs them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bench.context import Context, PhaseResult
from bench.phases.browse import browse
from bench.phases.burst import baseline_lock, burst
from bench.phases.ceiling import ceiling
from bench.phases.journey import journey
from bench.phases.soldout import soldout
from bench.phases.sustained import sustained

Phase = Callable[[Context], Awaitable[PhaseResult]]

PHASES: dict[str, Phase] = {
    "ceiling": ceiling,
    "burst": burst,
    "sustained": sustained,
    "soldout": soldout,
    "browse": browse,
    "journey": journey,
    "baseline-lock": baseline_lock,
}
