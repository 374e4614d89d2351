"""What one load-generator process saw of the journey: per route a latency histogram of every
request (from its send time) and its status counts; answers per second; the 503s and whether
they said when to retry; and the bookings it was told were held and paid, for the SQL checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.http import Answer
from bench.journey_requests import Route
from bench.recorder import MAX_LATENCY_US, cpu_seconds, new_histogram

ERROR_KINDS = 8
PROBLEM_TYPE = b'"type":"'
TIMEOUT = "timeout"  # no answer within the bench's timeout
FAILED = "failed"  # the connection failed (reset, closed) before an answer


@dataclass
class JourneyResult:
    """One process's figures, sent to the parent (everything here pickles)."""

    histograms: dict[str, bytes]  # route -> encoded histogram of latency, us, of every request
    statuses: dict[str, dict[str, int]]  # route -> HTTP status (or timeout, failed) -> requests
    failures: dict[str, int]  # route -> requests not answered as expected (timeouts included)
    per_second: list[int]  # HTTP answers (any status) in each second after the start
    lag: bytes  # encoded histogram, us: how late the generator sent what was due (its timers)
    unavailable: int  # 503 answers
    unavailable_with_retry_after: int  # ... of which said when to retry (Retry-After)
    refused: bytes  # encoded histogram of the 503 answers' latency, us (shed: how fast?)
    held: list[tuple[str, int]]  # (booking id, quantity) of every 201 pending hold
    paid: list[tuple[str, int]]  # (booking id, quantity) of every 201 succeeded payment
    error_kinds: dict[str, int]  # what went wrong -> how often (a few distinct kinds)
    error_examples: dict[str, str]  # kind -> the first answer of that kind
    first_send: float  # monotonic: the start instant, shared by every process
    last_answer: float
    cpu_seconds: float  # this process, over its measured window
    users: int
    users_lost: int  # users whose connection could not be opened again
    reconnects: int  # connections opened again (the old one timed out or was closed)


@dataclass
class JourneyRecorder:
    on_answer: Callable[[], None]  # progress: one more request finished
    seconds: int  # how many per-second counters to start with (grown if needed)
    histograms: dict[Route, HdrHistogram] = field(init=False)
    statuses: dict[Route, dict[str, int]] = field(init=False)
    failures: dict[Route, int] = field(init=False)
    per_second: list[int] = field(init=False)
    lag: HdrHistogram = field(default_factory=new_histogram)
    refused: HdrHistogram = field(default_factory=new_histogram)
    unavailable: int = 0
    unavailable_with_retry_after: int = 0
    held: list[tuple[bytes, int]] = field(default_factory=list)
    paid: list[tuple[bytes, int]] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)
    first_send: float = 0.0
    last_answer: float = 0.0
    users_lost: int = 0
    reconnects: int = 0
    cpu_at_start: float = 0.0
    cpu_at_stop: float = 0.0

    def __post_init__(self) -> None:
        self.histograms = {route: new_histogram() for route in Route}
        self.statuses = {route: {} for route in Route}
        self.failures = dict.fromkeys(Route, 0)
        self.per_second = [0] * self.seconds

    def start(self, at: float) -> None:
        self.first_send = at
        self.cpu_at_start = cpu_seconds()

    def stop(self) -> None:
        self.cpu_at_stop = cpu_seconds()

    def record(
        self,
        route: Route,
        outcome: Answer | BaseException,
        sent_at: float,
        ok: bool,
        booking: bytes,
        quantity: int,
    ) -> None:
        """One request of `route`, sent at `sent_at`, ended with `outcome`; `ok`: as expected.
        `booking` and `quantity`: what the user holds (or pays for)."""
        if isinstance(outcome, Answer):
            at = outcome.at
            status = str(outcome.status)
            second = int(at - self.first_send)
            while second >= len(self.per_second):
                self.per_second.append(0)
            self.per_second[second] += 1
            if outcome.status == 503:
                self.unavailable += 1
                self.unavailable_with_retry_after += bool(outcome.retry_after)
            if not ok:
                kind = f"{route} HTTP {outcome.status} {_problem_type(outcome.body)}"
                self.note_error(kind, outcome.body)
        else:
            at = time.monotonic()
            status = TIMEOUT if isinstance(outcome, TimeoutError) else FAILED
            if status == FAILED:
                self.note_error(f"{route} {type(outcome).__name__}: {outcome}")
        counts = self.statuses[route]
        counts[status] = counts.get(status, 0) + 1
        if not ok:
            self.failures[route] += 1
        elif route is Route.HOLD:
            self.held.append((booking, quantity))
        elif route is Route.PAY:
            self.paid.append((booking, quantity))
        latency = min(MAX_LATENCY_US, max(1, round((at - sent_at) * 1e6)))
        self.histograms[route].record_value(latency)
        if status == "503":
            self.refused.record_value(latency)
        self.last_answer = max(self.last_answer, at)
        self.on_answer()

    def note_error(self, kind: str, example: bytes = b"") -> None:
        if kind not in self.error_kinds and len(self.error_kinds) >= ERROR_KINDS:
            kind = "(other kinds)"
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
        if example and kind not in self.error_examples:
            self.error_examples[kind] = example[:300].decode(errors="replace")

    def result(self, users: int) -> JourneyResult:
        return JourneyResult(
            histograms={str(route): h.encode() for route, h in self.histograms.items()},
            statuses={str(route): counts for route, counts in self.statuses.items()},
            failures={str(route): count for route, count in self.failures.items()},
            per_second=self.per_second,
            lag=self.lag.encode(),
            unavailable=self.unavailable,
            unavailable_with_retry_after=self.unavailable_with_retry_after,
            refused=self.refused.encode(),
            held=[(booking.decode(), quantity) for booking, quantity in self.held],
            paid=[(booking.decode(), quantity) for booking, quantity in self.paid],
            error_kinds=self.error_kinds,
            error_examples=self.error_examples,
            first_send=self.first_send,
            last_answer=self.last_answer,
            cpu_seconds=self.cpu_at_stop - self.cpu_at_start,
            users=users,
            users_lost=self.users_lost,
            reconnects=self.reconnects,
        )


def _problem_type(body: bytes) -> str:
    """A problem+json answer's type (the same for every answer of a kind, unlike its detail)."""
    start = body.find(PROBLEM_TYPE)
    if start < 0:
        return repr(body[:80])
    start += len(PROBLEM_TYPE)
    return body[start : body.find(b'"', start)].decode(errors="replace")
