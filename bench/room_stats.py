"""The `room` phase's figures, as pure functions: is the pre-queue's admission order independent
of the order its buyers joined in (a chi-square test of independence), and did any later joiner
get in ahead of someone who had joined before them."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z_AT_0_001 = 3.0902  # the standard normal's 99.9th percentile


def chi_square_critical(degrees: int, z: float = Z_AT_0_001) -> float:
    """The chi-square quantile at `z`'s level (default p = 0.001), by Wilson and Hilferty's
    approximation (within 1% from 10 degrees of freedom up)."""
    k = 2 / (9 * degrees)
    return degrees * (1 - k + z * math.sqrt(k)) ** 3


@dataclass(frozen=True)
class Independence:
    bins: int
    chi_square: float
    critical: float

    @property
    def uniform(self) -> bool:
        return self.chi_square < self.critical


def join_vs_admission(admitted_in_join_order: Sequence[float], seed: int = 0) -> Independence:
    """`admitted_in_join_order[i]`: when the i-th buyer to join the pre-queue was admitted.
    Buyers are put in bins by join order and by admission order (ties in admission time, whole
    seconds, broken at random: under a uniform shuffle that changes nothing), and the table of
    bins tested against independence. Fewer bins for few buyers: at least 8 expected a cell."""
    n = len(admitted_in_join_order)
    bins = max(2, min(10, math.isqrt(n // 8)))
    draws = random.Random(seed)
    keyed = sorted(range(n), key=lambda i: (admitted_in_join_order[i], draws.random()))
    admission_rank = {buyer: rank for rank, buyer in enumerate(keyed)}
    counts = [[0] * bins for _ in range(bins)]
    for joined in range(n):
        counts[joined * bins // n][admission_rank[joined] * bins // n] += 1
    rows = [sum(row) for row in counts]
    columns = [sum(row[c] for row in counts) for c in range(bins)]
    chi = sum(
        (counts[r][c] - rows[r] * columns[c] / n) ** 2 / (rows[r] * columns[c] / n)
        for r in range(bins)
        for c in range(bins)
        if rows[r] and columns[c]
    )
    return Independence(bins, chi, chi_square_critical((bins - 1) ** 2))


@dataclass(frozen=True)
class Arrival:
    sent: float  # when its join was sent
    answered: float  # when its join was answered: it was in the line by then
    admitted_at: float  # when it was admitted (whole seconds, from its token)


def overtakers(arrivals: Sequence[Arrival]) -> int:
    """Buyers admitted strictly later than someone whose join was answered before theirs was
    even sent (so who surely joined after them): must be 0 in a first-come line. Concurrent
    joins have no order to keep, and are not compared."""
    answered = sorted(arrivals, key=lambda a: a.answered)
    count, latest, i = 0, -math.inf, 0
    for arrival in sorted(arrivals, key=lambda a: a.sent):
        while i < len(answered) and answered[i].answered < arrival.sent:
            latest = max(latest, answered[i].admitted_at)
            i += 1
        count += latest > arrival.admitted_at
    return count
