"""The benchmark's own arithmetic: which window of time a long run's answer counts in."""

from __future__ import annotations

from bench.recorder import Windows
from bench.requests import Outcome


def test_an_answer_counts_in_the_window_it_was_due_in() -> None:
    windows = Windows(origin=100.0, width=10.0)

    windows.record(Outcome.HELD, 100.0, 5_000)
    windows.record(Outcome.HELD, 109.999, 300_000)  # answered late, due in the first window
    windows.record(Outcome.SOLD_OUT, 110.0, 1_000)

    encoded = windows.encoded()
    assert sorted(encoded) == [0, 1]
    assert encoded[0][0] == {"held": 2}
    assert encoded[1][0] == {"sold_out": 1}
    assert windows.histograms[0].get_max_value() >= 299_000
