"""The journey's figures from every load-generator process, merged: per route and overall
latency, throughput over the whole run and over its steady part, errors by kind."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.cpu import CpuShare, share_between
from bench.journey_record import JourneyResult
from bench.journey_requests import Route
from bench.pool import Run
from bench.recorder import new_histogram
from bench.stats import latency_summary, merged_histogram


@dataclass
class JourneyMeasurement:
    routes: dict[Route, HdrHistogram]
    statuses: dict[str, dict[str, int]]  # route -> status -> requests
    failures: dict[str, int]  # route -> requests not answered as expected
    per_second: list[int]  # HTTP answers in each second after the start
    lag: HdrHistogram  # how late the generator's timers sent, us
    unavailable: int
    unavailable_with_retry_after: int
    refused: HdrHistogram  # latency of the 503 answers, us
    held: list[tuple[str, int]]
    paid: list[tuple[str, int]]
    error_kinds: dict[str, int]
    error_examples: dict[str, str]
    start_at: float
    last_answer: float
    client_cpu_seconds: float
    cpu: CpuShare
    users_lost: int
    reconnects: int

    @classmethod
    def of(cls, run: Run) -> JourneyMeasurement:
        results: list[JourneyResult] = run.results
        routes = {route: new_histogram() for route in Route}
        lag, refused = new_histogram(), new_histogram()
        per_second = [0] * max(len(result.per_second) for result in results)
        for result in results:
            for route in Route:
                routes[route].add(HdrHistogram.decode(result.histograms[route]))
            lag.add(HdrHistogram.decode(result.lag))
            refused.add(HdrHistogram.decode(result.refused))
            for second, answers in enumerate(result.per_second):
                per_second[second] += answers
        return cls(
            routes=routes,
            statuses={route: _summed(r.statuses[route] for r in results) for route in Route},
            failures=_summed(result.failures for result in results),
            per_second=per_second,
            lag=lag,
            unavailable=sum(result.unavailable for result in results),
            unavailable_with_retry_after=sum(r.unavailable_with_retry_after for r in results),
            refused=refused,
            held=[held for result in results for held in result.held],
            paid=[paid for result in results for paid in result.paid],
            error_kinds=_summed(result.error_kinds for result in results),
            error_examples={k: v for r in results for k, v in r.error_examples.items()},
            start_at=run.start_at,
            last_answer=max(result.last_answer for result in results),
            client_cpu_seconds=sum(result.cpu_seconds for result in results),
            cpu=share_between(run.cpu_before, run.cpu_after),
            users_lost=sum(result.users_lost for result in results),
            reconnects=sum(result.reconnects for result in results),
        )

    @property
    def requests(self) -> int:
        return sum(histogram.get_total_count() for histogram in self.routes.values())

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer, whatever its status."""
        return sum(self.per_second)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def count(self, route: Route, status: str) -> int:
        return self.statuses[route].get(status, 0)

    def elapsed(self, duration: float) -> float:
        """The run's length: its duration, or until its last answer if that came later."""
        return max(duration, self.last_answer - self.start_at)

    def answers_per_second(self, since: float, until: float) -> float | None:
        """Answers per second over the whole seconds between `since` and `until` (after the
        start); None if there is no whole second in between."""
        first, last = math.ceil(since), math.floor(until)
        if last <= first:
            return None
        return sum(self.per_second[first:last]) / (last - first)

    def overall(self) -> HdrHistogram:
        return merged_histogram(self.routes.values())

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Latency per route and overall, with the requests not answered as expected."""
        rows = {
            str(route): {**latency_summary(h), "errors": self.failures.get(route, 0)}
            for route, h in self.routes.items()
        }
        rows["all"] = {**latency_summary(self.overall()), "errors": self.failed}
        return rows


def _summed(counts: Any) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for kind, count in each.items():
            merged[kind] = merged.get(kind, 0) + count
    return dict(sorted(merged.items(), key=lambda item: -item[1]))
