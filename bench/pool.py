"""The load-generator processes, seen from the parent: one job at a time for all of them, started
together through a barrier, with live progress and CPU accounting around the measured window."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from bench.cpu import CpuSample, sample_cpu
from bench.worker import Job, worker_main

READY_TIMEOUT = 120.0  # opening 10,000 connections takes a few seconds; a minute means trouble
START_MARGIN = 0.1  # seconds between the barrier and the start instant, for the message to land
POLL = 0.1


class LoadGeneratorFailed(RuntimeError):
    pass


@dataclass
class Run:
    # One per process: a recorder.WorkerResult, or a JourneyResult for a journey job.
    results: list[Any]
    cpu_before: CpuSample
    cpu_after: CpuSample
    start_at: float


class LoadGenerator:
    """`processes` spawned once and reused by every phase."""

    def __init__(
        self,
        processes: int,
        app_group: Callable[[], int | None],
        provider_group: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._context = multiprocessing.get_context("spawn")
        self.processes = processes
        # The app's and the payment provider's process groups, for their CPU shares.
        self._app_group, self._provider_group = app_group, provider_group
        self._progress: Any = self._context.RawArray("q", processes)
        self._pipes: list[Connection] = []
        self._children: list[Any] = []
        self._spawn()

    def _spawn(self) -> None:
        for share in range(self.processes):
            ours, theirs = self._context.Pipe()
            child = self._context.Process(
                target=worker_main,
                args=(share, self.processes, theirs, self._progress),
                name=f"bench-load-{share}",
                daemon=True,
            )
            child.start()
            theirs.close()
            self._pipes.append(ours)
            self._children.append(child)

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._children if child.pid is not None]

    def run(self, job: Job, on_progress: Callable[[int], None]) -> Run:
        """Run `job` in every process; `on_progress(answered so far)` is called as it goes.
        If any process fails, all are replaced: the others may be stuck at the barrier."""
        try:
            return self._run(job, on_progress)
        except BaseException:
            self._terminate()
            self._spawn()
            raise

    def _run(self, job: Job, on_progress: Callable[[int], None]) -> Run:
        for share in range(self.processes):
            self._progress[share] = 0
        for pipe in self._pipes:
            pipe.send(job)
        self._expect("ready", time.monotonic() + READY_TIMEOUT)
        start_at = time.monotonic() + START_MARGIN
        for pipe in self._pipes:
            pipe.send(("start", start_at))
        time.sleep(max(0.0, start_at - time.monotonic()))
        before = self._sample_cpu()
        deadline = start_at + job.duration + job.timeout + 60.0
        results = self._expect("result", deadline, lambda: on_progress(sum(self._progress)))
        after = self._sample_cpu()
        on_progress(sum(self._progress))
        return Run(results, before, after, start_at)

    def _sample_cpu(self) -> CpuSample:
        return sample_cpu(self._app_group(), self.pids, self._provider_group())

    def _expect(
        self, kind: str, deadline: float, tick: Callable[[], None] | None = None
    ) -> list[Any]:
        got: dict[int, Any] = {}
        while len(got) < self.processes:
            waiting = [pipe for index, pipe in enumerate(self._pipes) if index not in got]
            for pipe in wait(waiting, timeout=POLL):
                assert isinstance(pipe, Connection)
                message, payload = pipe.recv()
                if message == "failed":
                    raise LoadGeneratorFailed(f"a load-generator process failed:\n{payload}")
                assert message == kind, f"expected {kind}, got {message}"
                got[self._pipes.index(pipe)] = payload
            if tick is not None:
                tick()
            if time.monotonic() > deadline:
                raise LoadGeneratorFailed(f"load generator: no '{kind}' by the deadline")
        return [got[index] for index in range(self.processes)]

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):  # BrokenPipeError included
                pipe.send(None)
        for child in self._children:
            child.join(timeout=3)
        self._terminate()

    def _terminate(self) -> None:
        for child in self._children:
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
        for pipe in self._pipes:
            pipe.close()
        self._children, self._pipes = [], []
