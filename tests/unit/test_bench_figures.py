"""The benchmark's own rules: which phases and rates a command line asks for, where sustained's
refinement tries next, which window of time a marathon's answer counts in, and what the app's
batch counters and its request durations say between two readings."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import parse
from bench.app_metrics import BATCH_SERIES, ServerLatency, batch_figures, samples
from bench.config import DEFAULT_PHASES
from bench.journey_checks import callbacks_accepted
from bench.phases.sustained import refined_rate
from bench.recorder import Windows
from bench.requests import Outcome


def test_the_marathon_runs_only_when_asked_for_and_last() -> None:
    assert "marathon" not in parse([]).phases
    assert parse([]).phases == DEFAULT_PHASES
    assert parse(["--phases", "marathon,sustained"]).phases == ("sustained", "marathon")


def test_explicit_rates_are_tried_as_given_unless_refinement_is_asked_for() -> None:
    assert parse([]).rate_refinements == 3
    assert parse(["--rates", "500,1000"]).rate_refinements == 0
    assert parse(["--rates", "500,1000", "--rate-refinements", "2"]).rate_refinements == 2


def test_refinement_halves_the_gap_between_pass_and_fail_to_the_grain() -> None:
    assert refined_rate(1000, 2000) == 1500
    assert refined_rate(1500, 2000) == 1750
    assert refined_rate(1750, 2000) == 1900  # 1875 rounds to the grain of 50
    assert refined_rate(250, 500) == 400  # 375: halves round to even multiples


def test_refinement_stops_when_nothing_failed_or_no_rate_lies_between() -> None:
    assert refined_rate(1000, None) is None
    assert refined_rate(0, 500) is None  # nothing passed: the floor search's business
    assert refined_rate(1000, 1050) is None
    assert refined_rate(1000, 1100) == 1050


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


def test_the_journey_counts_the_webhooks_the_app_logged_as_accepted(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        '{"method":"POST","route":"/api/v1/payments/webhook","status":200}\n'  # orjson's
        '{"method": "POST", "route": "/api/v1/payments/webhook", "status": 200}\n'
        '{"method":"POST","route":"/api/v1/payments/webhook","status":400}\n'
        '{"method":"GET","route":"/api/v1/events","status":200}\n'
        "[INFO] Started worker-1 /api/v1/payments/webhook\n"
    )
    assert callbacks_accepted(log) == 2


def test_hold_batch_figures_are_per_batch_between_two_readings() -> None:
    batches, holds, seconds = BATCH_SERIES
    before = {batches: 10.0, holds: 100.0, seconds: 0.5}
    after = {batches: 30.0, holds: 150.0, seconds: 0.9}
    assert batch_figures(before, after) == {"holds_per_batch": 2.5, "batch_ms": 20.0}
    assert batch_figures(before, before) is None  # no batch meanwhile: nothing to say
    assert batch_figures(None, after) is None  # an app without the counters


def test_a_sample_of_the_exposition_keeps_its_labels_whatever_their_order() -> None:
    text = (
        "# TYPE x histogram\n"
        'x_bucket{le="0.1",method="POST",route="/api/v1/bookings",status="201"} 7.0\n'
        'x_bucket{status="201",le="+Inf",route="/api/v1/bookings",method="POST"} 9.0\n'
        "y_total 3.0\n"
    )
    assert list(samples(text)) == [
        (
            "x_bucket",
            {"le": "0.1", "method": "POST", "route": "/api/v1/bookings", "status": "201"},
            7.0,
        ),
        (
            "x_bucket",
            {"status": "201", "le": "+Inf", "route": "/api/v1/bookings", "method": "POST"},
            9.0,
        ),
        ("y_total", {}, 3.0),
    ]


def test_the_apps_latency_between_two_readings_counts_only_the_answers_given_between() -> None:
    inf = float("inf")
    before = {0.05: 100.0, 0.1: 100.0, 0.25: 100.0, inf: 100.0}
    after = {0.05: 150.0, 0.1: 180.0, 0.25: 199.0, inf: 200.0}
    figures = ServerLatency.between(before, after)
    assert figures == ServerLatency(count=100, within_100ms=0.8, p99_at_most_ms=250.0)
    assert ServerLatency.between(after, after) is None  # nothing answered between
    assert ServerLatency.between(None, {0.1: 1.0, inf: 2.0}) == ServerLatency(2, 0.5, None)
