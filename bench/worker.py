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
from bench.recorder import Recorder, Windows, WorkerResult
from bench.requests import BookingRequests, BrowseRequests, HealthRequests, Outcome
from bench.room_crowd import Crowd, CrowdResult, RoomPlan

Mode = Literal["burst", "closed", "open", "journey", "room"]
Requests = HealthRequests | BrowseRequests | BookingRequests | JourneyPlan | RoomPlan


@dataclass(frozen=True)
class Job:
    mode: Mode
    requests: Requests
    host: str
    port: int
    connections: int  # in all processes together
    timeout: float
    duration: float = 0.0  # closed and open loop, journey; room: the most it may take
    rate: float = 0.0  # open loop: requests per second, all processes together
    window: float = 0.0  # open loop: seconds of each window of per-window latency (0: none)
    until_sold_out: bool = False  # open loop: a process sends no more once it is told sold out
    keep_held: bool = True  # False: holds are counted, their ids not kept (a marathon's)


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
) -> WorkerResult | JourneyResult | CrowdResult:
    def answered() -> None:
        progress[share] += 1

    if isinstance(job.requests, JourneyPlan):
        return await _run_journey(job, job.requests, share, of, pipe, answered)
    if isinstance(job.requests, RoomPlan):
        crowd = Crowd(job.requests, share, of, (job.host, job.port), job.timeout, answered)
        bookings = await open_connections(job.host, job.port, crowd.booking_connections)
        connections, _ = await _ready(job, share_of(job.connections, share, of), pipe)
        return await crowd.run(connections, bookings)  # its own times: the plan's opening
    recorder = Recorder(job.requests.requests(share, of), answered, keep_held=job.keep_held)
    count = share_of(job.connections, share, of)
    connections, start_at = await _ready(job, count, pipe)
    if job.window:
        recorder.windows = Windows(start_at, job.window)
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
        due = driver.Schedule(start_at, job.rate, range(share, total, of))
        await driver.run_open_loop(
            connections, recorder, due, job.timeout, address, _stop(job, recorder)
        )
    return recorder.result(count)


def _stop(job: Job, recorder: Recorder) -> Callable[[], bool]:
    """When an open loop stops sending: once this process is told sold out, if the job says so
    (with quantity 1 per booking, not one ticket is left then); else never."""
    if job.until_sold_out:
        return lambda: recorder.count(Outcome.SOLD_OUT) > 0
    return lambda: False


async def _run_journey(
    job: Job, plan: JourneyPlan, share: int, of: int, pipe: Connection, answered: Callable[[], None]
) -> JourneyResult:
    # One counter per second of the run, and of the timeout its last requests may take.
    recorder = JourneyRecorder(answered, seconds=math.ceil(plan.duration + job.timeout) + 2)
    journeys = Journeys(plan, share, of, recorder, (job.host, job.port))
    connections, start_at = await _ready(job, len(journeys.numbers), pipe)
    await journeys.run(connections, start_at, job.timeout)
    return recorder.result(len(journeys.numbers))
