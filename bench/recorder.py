"""What one load-generator process saw: a latency histogram per outcome (and, for a long run,
per window of time), and the raw facts the parent checks against the database (which bookings it
was told were held)."""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.http import Answer
from bench.requests import Outcome, RequestStream, booking_id

MAX_LATENCY_US = 300_000_000  # 5 minutes: anything slower is clamped, never dropped
ERROR_KINDS = 5


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, MAX_LATENCY_US, 3)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Windows:
    """Latency by window of intended send time: one histogram and a count per outcome each, so
    memory grows with the run's length, not with its requests."""

    origin: float  # monotonic: the run's start instant, the same in every process
    width: float  # seconds
    histograms: dict[int, HdrHistogram] = field(default_factory=dict)
    counts: dict[int, dict[str, int]] = field(default_factory=dict)

    def record(self, outcome: Outcome, since: float, latency_us: int) -> None:
        index = max(0, int((since - self.origin) // self.width))
        histogram = self.histograms.get(index)
        if histogram is None:
            histogram = self.histograms[index] = new_histogram()
            self.counts[index] = {}
        histogram.record_value(latency_us)
        counts = self.counts[index]
        counts[outcome] = counts.get(outcome, 0) + 1

    def encoded(self) -> dict[int, tuple[dict[str, int], bytes]]:
        return {
            index: ({str(o): n for o, n in self.counts[index].items()}, histogram.encode())
            for index, histogram in self.histograms.items()
        }


@dataclass
class WorkerResult:
    counts: dict[str, int]
    histograms: dict[str, bytes]  # outcome -> encoded HdrHistogram of latency in microseconds
    lag: bytes  # encoded histogram: how late the generator itself sent (open loop), us
    first_send: float  # monotonic
    last_send: float  # monotonic: when the last request was written
    last_answer: float  # monotonic
    last_held: float  # monotonic time of the last 201, or 0
    cpu_seconds: float  # this process, from the start signal to its last answer
    cache_answers: dict[str, int]  # X-Cache header value -> answers carrying it
    held_ids: list[str]  # empty when the holds were only counted
    error_kinds: dict[str, int]  # what went wrong -> how often (a few distinct kinds)
    connections: int
    # window index -> (outcome -> count, encoded latency histogram); empty without windows
    windows: dict[int, tuple[dict[str, int], bytes]] = field(default_factory=dict)


@dataclass
class Recorder:
    stream: RequestStream
    on_answer: Callable[[], None]  # progress: one more request finished
    # False: holds are counted, not kept (a marathon's million answers would weigh hundreds of MB)
    keep_held: bool = True
    windows: Windows | None = None  # latency per window of time too, when set
    histograms: dict[Outcome, HdrHistogram] = field(default_factory=dict)
    lag: HdrHistogram = field(default_factory=new_histogram)
    held_bodies: list[bytes] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    cache_answers: dict[str, int] = field(default_factory=dict)
    first_send: float = 0.0
    last_send: float = 0.0
    last_answer: float = 0.0
    last_held: float = 0.0
    cpu_at_start: float = 0.0
    cpu_at_stop: float = 0.0

    def start(self, at: float) -> None:
        self.first_send = at
        self.cpu_at_start = cpu_seconds()

    def stop(self) -> None:
        """The measured window ends: what is done after (parsing ids) is not the load's cost."""
        self.cpu_at_stop = cpu_seconds()

    def record(self, outcome: Answer | BaseException, since: float, now: float) -> Outcome:
        """Judge and time one request; `since` is when it was (meant to be) sent."""
        if isinstance(outcome, Answer):
            judged = self.stream.judge(outcome.status, outcome.body)
            at = outcome.at
            if outcome.cache:
                cache = outcome.cache.decode("latin-1")
                self.cache_answers[cache] = self.cache_answers.get(cache, 0) + 1
            if judged is Outcome.HELD:
                if self.keep_held:
                    self.held_bodies.append(outcome.body)
                self.last_held = max(self.last_held, at)
            elif judged is Outcome.ERROR:
                self.note_error(f"HTTP {outcome.status}: {outcome.body[:200]!r}")
        else:
            judged = Outcome.TIMEOUT if isinstance(outcome, TimeoutError) else Outcome.ERROR
            at = now
            if judged is Outcome.ERROR:
                self.note_error(f"{type(outcome).__name__}: {outcome}")
        histogram = self.histograms.get(judged)
        if histogram is None:
            histogram = self.histograms[judged] = new_histogram()
        latency_us = min(MAX_LATENCY_US, max(1, round((at - since) * 1e6)))
        histogram.record_value(latency_us)
        if self.windows is not None:
            self.windows.record(judged, since, latency_us)
        self.last_answer = max(self.last_answer, at)
        self.on_answer()
        return judged

    def count(self, outcome: Outcome) -> int:
        histogram = self.histograms.get(outcome)
        return histogram.get_total_count() if histogram else 0

    def note_error(self, text: str) -> None:
        if text not in self.error_kinds and len(self.error_kinds) >= ERROR_KINDS:
            text = "(other kinds)"
        self.error_kinds[text] = self.error_kinds.get(text, 0) + 1

    def result(self, connections: int) -> WorkerResult:
        return WorkerResult(
            counts={str(o): h.get_total_count() for o, h in self.histograms.items()},
            histograms={str(o): h.encode() for o, h in self.histograms.items()},
            lag=self.lag.encode(),
            first_send=self.first_send,
            last_send=self.last_send,
            last_answer=self.last_answer,
            last_held=self.last_held,
            cpu_seconds=self.cpu_at_stop - self.cpu_at_start,
            cache_answers=self.cache_answers,
            held_ids=[booking_id(body) for body in self.held_bodies],
            error_kinds=self.error_kinds,
            connections=connections,
            windows=self.windows.encoded() if self.windows else {},
        )
