"""One load-generator process: takes jobs from the parent, opens its share of the connections,
says "ready", starts at the instant the parent names, and sends back what it saw."""

from __future__ import annotations

import asyncio
import math
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

import uvloop

from bench import driver
from bench.connections import open_connections
from bench.http import HttpConnection
from bench.journey import Journeys
from bench.journey_record import JourneyRecorder, JourneyResult
from bench.journey_requests import JourneyPlan
from bench.recorder import Recorder, WorkerResult
from bench.requests import BookingRequests, BrowseRequests, HealthRequests

Mode = Literal["burst", "closed", "open", "journey"]
Requests = HealthRequests | BrowseRequests | BookingRequests | JourneyPlan


@dataclass(frozen=True)
class Job:
    mode: Mode
    requests: Requests
    host: str
    port: int
    connections: int  # in all processes together
    timeout: float
    duration: float = 0.0  # closed and open loop, journey
    rate: float = 0.0  # open loop: requests per second, all processes together


def share_of(total: int, share: int, of: int) -> int:
    """How many of `total` items process `share` of `of` takes (the same split as [share::of])."""
    return total // of + (1 if share < total % of else 0)


def worker_main(share: int, of: int, pipe: Connection, progress: Any) -> None:
    """Process entry point: serve jobs until the parent sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    while True:
        try:
            job = pipe.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            result = uvloop.run(_run(job, share, of, pipe, progress))
        except Exception:
            pipe.send(("failed", traceback.format_exc()))
        else:
            pipe.send(("result", result))


async def _ready(job: Job, count: int, pipe: Connection) -> tuple[list[HttpConnection], float]:
    """Our `count` connections, opened; then "ready", and the start instant the parent names."""
    connections = await open_connections(job.host, job.port, count) if count else []
    pipe.send(("ready", None))
    # Waiting in a thread keeps this loop turning: closed connections are noticed meanwhile.
    message, start_at = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    assert message == "start", message
    return connections, float(start_at)


async def _run(
    job: Job, share: int, of: int, pipe: Connection, progress: Any
) -> WorkerResult | JourneyResult:
    def answered() -> None:
        progress[share] += 1

    if isinstance(job.requests, JourneyPlan):
        return await _run_journey(job, job.requests, share, of, pipe, answered)
    recorder = Recorder(job.requests.requests(share, of), answered)
    count = share_of(job.connections, share, of)
    connections, start_at = await _ready(job, count, pipe)
    address = (job.host, job.port)
    if job.mode == "burst":
        await driver.run_burst(connections, recorder, start_at, job.timeout)
    elif job.mode == "closed":
        await driver.run_closed_loop(
            connections, recorder, start_at, job.duration, job.timeout, address
        )
    else:
        # Request n (of all processes) is due at start + n / rate; this process sends every
        # of-th one, so the processes interleave into one even stream.
        total = round(job.rate * job.duration)
        due = [start_at + n / job.rate for n in range(share, total, of)]
        await driver.run_open_loop(connections, recorder, due, job.timeout, address)
    return recorder.result(count)


async def _run_journey(
    job: Job, plan: JourneyPlan, share: int, of: int, pipe: Connection, answered: Callable[[], None]
) -> JourneyResult:
    # One counter per second of the run, and of the timeout its last requests may take.
    recorder = JourneyRecorder(answered, seconds=math.ceil(plan.duration + job.timeout) + 2)
    journeys = Journeys(plan, share, of, recorder, (job.host, job.port))
    connections, start_at = await _ready(job, len(journeys.numbers), pipe)
    await journeys.run(connections, start_at, job.timeout)
    return recorder.result(len(journeys.numbers))
