"""The `room` benchmark's figures: the pre-queue's independence test and the overtaking count."""

from __future__ import annotations

import random

import pytest

from bench.__main__ import parse
from bench.room_stats import Arrival, chi_square_critical, join_vs_admission, overtakers


@pytest.mark.parametrize(("degrees", "exact"), [(16, 39.25), (25, 52.62), (80, 124.84)])
def test_the_critical_value_is_the_chi_square_quantile_at_one_in_a_thousand(
    degrees: int, exact: float
) -> None:
    assert chi_square_critical(degrees) == pytest.approx(exact, rel=0.01)


def test_a_shuffled_pre_queue_passes_and_a_first_come_one_fails() -> None:
    draws = random.Random(7)
    shuffled = [float(draws.randrange(2000) // 100) for _ in range(2000)]  # whole seconds
    assert join_vs_admission(shuffled).uniform
    first_come = [float(index // 100) for index in range(2000)]
    assert not join_vs_admission(first_come).uniform


def test_a_later_joiner_admitted_before_an_earlier_one_is_counted_concurrent_ones_are_not() -> None:
    in_turn = [Arrival(0, 1, 10), Arrival(2, 3, 10), Arrival(4, 5, 11)]
    assert overtakers(in_turn) == 0
    jumped = [Arrival(0, 1, 12), Arrival(2, 3, 10), Arrival(4, 5, 11)]
    assert overtakers(jumped) == 2  # both later joiners got in before the first
    concurrent = [Arrival(0, 3, 12), Arrival(1, 2, 10)]  # sent before the other was answered
    assert overtakers(concurrent) == 0


def test_the_room_phase_runs_only_when_asked_for_and_refuses_a_poll_that_would_go_stale() -> None:
    assert "room" not in parse([]).phases
    asked = parse(["--phases", "room", "--room-joins", "2000", "--room-prequeue", "800"])
    assert asked.phases == ("room",) and (asked.room_joins, asked.room_prequeue) == (2000, 800)
    with pytest.raises(SystemExit):
        parse(["--phases", "room", "--room-poll", "60"])
