"""Merging what the load-generator processes saw into one measurement of a run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.cpu import CpuShare, share_between
from bench.pool import Run
from bench.recorder import new_histogram
from bench.requests import Outcome

PERCENTILES = (50.0, 95.0, 99.0)


def _ms(microseconds: float) -> float:
    return round(microseconds / 1000, 2)


def latency_summary(histogram: HdrHistogram) -> dict[str, float | int]:
    summary: dict[str, float | int] = {"count": histogram.get_total_count()}
    summary["avg_ms"] = _ms(histogram.get_mean_value())
    for percentile in PERCENTILES:
        summary[f"p{percentile:g}_ms"] = _ms(histogram.get_value_at_percentile(percentile))
    summary["max_ms"] = _ms(histogram.get_max_value())
    return summary


@dataclass
class Window:
    """What was due in one window of time, from every process."""

    counts: dict[Outcome, int]
    histogram: HdrHistogram

    def count(self, outcome: Outcome) -> int:
        return self.counts.get(outcome, 0)

    def summary(self) -> dict[str, Any]:
        """Requests, holds, refusals and failures, and the latency of all of them."""
        latency = latency_summary(self.histogram)
        return {
            "requests": self.histogram.get_total_count(),
            "held": self.count(Outcome.HELD),
            "sold_out": self.count(Outcome.SOLD_OUT),
            "errors": self.count(Outcome.ERROR),
            "timeouts": self.count(Outcome.TIMEOUT),
            **{k: latency[k] for k in ("p50_ms", "p99_ms", "max_ms")},
        }


@dataclass
class Measurement:
    """One run of one job across all processes."""

    histograms: dict[Outcome, HdrHistogram]
    lag: HdrHistogram
    first_send: float
    last_send: float
    last_answer: float
    last_held: float
    held_ids: list[str]
    error_kinds: dict[str, int]
    cache_answers: dict[str, int]  # X-Cache header value -> answers carrying it
    client_cpu_seconds: float  # from the processes themselves, over their measured windows
    cpu: CpuShare
    connections: int
    windows: dict[int, Window]  # by index from the start; empty unless the job asked for them

    @classmethod
    def of(cls, run: Run) -> Measurement:
        histograms: dict[Outcome, HdrHistogram] = {}
        lag = new_histogram()
        for result in run.results:
            for name, encoded in result.histograms.items():
                merged = histograms.setdefault(Outcome(name), new_histogram())
                merged.add(HdrHistogram.decode(encoded))
            lag.add(HdrHistogram.decode(result.lag))
        answered = [result for result in run.results if result.last_answer]
        return cls(
            histograms=histograms,
            lag=lag,
            first_send=run.start_at,
            last_send=max((r.last_send for r in run.results), default=run.start_at),
            last_answer=max((r.last_answer for r in answered), default=run.start_at),
            last_held=max((r.last_held for r in run.results), default=0.0),
            held_ids=[i for result in run.results for i in result.held_ids],
            error_kinds=_merged(result.error_kinds for result in run.results),
            cache_answers=_merged(result.cache_answers for result in run.results),
            client_cpu_seconds=sum(result.cpu_seconds for result in run.results),
            cpu=share_between(run.cpu_before, run.cpu_after),
            connections=sum(result.connections for result in run.results),
            windows=_merged_windows(run.results),
        )

    def count(self, outcome: Outcome) -> int:
        histogram = self.histograms.get(outcome)
        return histogram.get_total_count() if histogram else 0

    @property
    def total(self) -> int:
        return sum(self.count(outcome) for outcome in Outcome)

    @property
    def failures(self) -> int:
        return self.count(Outcome.ERROR) + self.count(Outcome.TIMEOUT)

    @property
    def elapsed(self) -> float:
        """First send to last answer."""
        return max(1e-9, self.last_answer - self.first_send)

    @property
    def throughput(self) -> float:
        return self.total / self.elapsed

    @property
    def client_cores(self) -> float:
        """Average cores the load generator used while it ran (its own accounting)."""
        return self.client_cpu_seconds / self.elapsed

    def overall(self) -> HdrHistogram:
        return merged_histogram(self.histograms.values())

    def outcomes(self) -> dict[str, dict[str, Any]]:
        return {str(o): latency_summary(h) for o, h in sorted(self.histograms.items())}


def merged_histogram(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    merged = new_histogram()
    for histogram in histograms:
        merged.add(histogram)
    return merged


def _merged_windows(results: Iterable[Any]) -> dict[int, Window]:
    windows: dict[int, Window] = {}
    for result in results:
        for index, (counts, encoded) in result.windows.items():
            window = windows.setdefault(index, Window({}, new_histogram()))
            window.histogram.add(HdrHistogram.decode(encoded))
            for name, count in counts.items():
                window.counts[Outcome(name)] = window.count(Outcome(name)) + count
    return dict(sorted(windows.items()))


def _merged(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for kind, count in each.items():
            merged[kind] = merged.get(kind, 0) + count
    return dict(sorted(merged.items(), key=lambda item: -item[1]))
