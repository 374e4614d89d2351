"""The three ways one load-generator process drives its connections, all callback-driven (no task
per request, so the client stays cheap):

- burst: one request per connection, all written at the start instant; latency from that instant.
- closed loop: each connection sends its next request when the last one is answered.
- open loop: requests are due at a constant rate whether or not earlier ones were answered;
  latency is measured from each one's *intended* send time, so a server that falls behind shows
  it as latency instead of silently slowing the client (coordinated omission). It may stop
  early (a marathon, once its tickets are sold out).

The `journey` phase's users (a visit of several requests, with think time) are bench/journey.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from bench.connections import close_all, connect, watchdog
from bench.http import Answer, HttpConnection
from bench.recorder import Recorder

# After the last request is due, how long to wait for stragglers beyond the request timeout.
DRAIN_GRACE = 2.0


# Reconnections in flight: asyncio keeps only weak references to tasks.
_replacing: set[asyncio.Task[None]] = set()


def _in_background(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _replacing.add(task)
    task.add_done_callback(_replacing.discard)


@dataclass(frozen=True)
class Schedule:
    """When this process's open-loop requests are due, computed as they come (a marathon's
    million would be a list of floats per process): request n of all processes is due at
    start + n / rate, and this process sends the numbers in `numbers` (every of-th one)."""

    start_at: float
    rate: float
    numbers: range

    def __len__(self) -> int:
        return len(self.numbers)

    def __iter__(self) -> Iterator[float]:
        return (self.start_at + n / self.rate for n in self.numbers)

    @property
    def first(self) -> float:
        return self.start_at + self.numbers[0] / self.rate if self.numbers else time.monotonic()


async def sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic() - 0.002))
    while time.monotonic() < at:  # the last 2 ms spinning: every process starts together
        pass


async def run_burst(
    connections: list[HttpConnection], recorder: Recorder, start_at: float, request_timeout: float
) -> None:
    requests = [recorder.stream.next() for _ in connections]
    left = len(connections)
    drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(_: HttpConnection, outcome: Answer | BaseException) -> None:
        nonlocal left
        recorder.record(outcome, start_at, time.monotonic())
        left -= 1
        if left == 0 and not drained.done():
            drained.set_result(None)

    await sleep_until(start_at)
    recorder.start(start_at)
    async with watchdog(lambda: connections, request_timeout):
        for connection, request in zip(connections, requests, strict=True):
            connection.intended = start_at
            connection.send(request, done)
        recorder.last_send = time.monotonic()
        if left:
            await drained
    recorder.stop()
    close_all(connections)


async def run_closed_loop(
    connections: list[HttpConnection],
    recorder: Recorder,
    start_at: float,
    duration: float,
    request_timeout: float,
    address: tuple[str, int],
) -> None:
    end = start_at + duration
    live = list(connections)
    active = len(live)
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def retire() -> None:
        nonlocal active
        active -= 1
        if active == 0 and not finished.done():
            finished.set_result(None)

    def send(connection: HttpConnection) -> None:
        if time.monotonic() >= end:
            retire()
        else:
            connection.send(recorder.stream.next(), done)

    def done(connection: HttpConnection, outcome: Answer | BaseException) -> None:
        recorder.record(outcome, connection.sent_at, time.monotonic())
        if not connection.closed:
            send(connection)
        elif time.monotonic() < end:
            _in_background(_replace(connection))
        else:
            retire()

    async def _replace(dead: HttpConnection) -> None:
        try:
            fresh = await connect(*address)
        except OSError as error:
            recorder.note_error(f"reconnect failed: {error!r}")
            retire()
            return
        live[live.index(dead)] = fresh
        send(fresh)

    await sleep_until(start_at)
    recorder.start(start_at)
    async with watchdog(lambda: live, request_timeout):
        for connection in connections:
            send(connection)
        await finished
    recorder.stop()
    close_all(live)


async def run_open_loop(
    connections: list[HttpConnection],
    recorder: Recorder,
    due: Schedule,
    request_timeout: float,
    address: tuple[str, int],
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Send one request at each time `due`, on whichever connection is free, until `stop()`:
    then nothing more is sent, and what was sent is waited for."""
    idle = deque(connections)
    live = list(connections)
    backlog: deque[tuple[float, bytes]] = deque()
    left = len(due)
    ended = False
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(connection: HttpConnection, intended: float, request: bytes) -> None:
        connection.intended = intended
        connection.send(request, done)

    def free(connection: HttpConnection) -> None:
        if backlog:
            send(connection, *backlog.popleft())
        else:
            idle.append(connection)

    def done(connection: HttpConnection, outcome: Answer | BaseException) -> None:
        nonlocal left
        recorder.record(outcome, connection.intended, time.monotonic())
        left -= 1
        if left == 0 and not finished.done():
            finished.set_result(None)
        if ended:
            return
        if connection.closed:
            _in_background(_replace(connection))
        else:
            free(connection)

    async def _replace(dead: HttpConnection) -> None:
        try:
            fresh = await connect(*address)
        except OSError as error:
            recorder.note_error(f"reconnect failed: {error!r}")
            return
        live[live.index(dead)] = fresh
        free(fresh)

    start_at = due.first
    await sleep_until(start_at)
    recorder.start(start_at)
    async with watchdog(lambda: live, request_timeout):
        for sent, intended in enumerate(due):
            now = time.monotonic()
            if intended > now:
                await asyncio.sleep(intended - now)
                now = time.monotonic()
            if stop():
                left -= len(due) - sent  # never sent now: not waited for
                if left == 0 and not finished.done():
                    finished.set_result(None)
                break
            # The generator's own lateness: if this grows, the client, not the server, is slow.
            recorder.lag.record_value(max(1, round((now - intended) * 1e6)))
            request = recorder.stream.next()
            if idle:
                send(idle.popleft(), intended, request)
            else:
                backlog.append((intended, request))
        if left:
            try:
                await asyncio.wait_for(finished, request_timeout + DRAIN_GRACE)
            except TimeoutError:
                ended = True
                now = time.monotonic()
                for intended, _ in backlog:  # never got a connection: counted, not dropped
                    recorder.record(TimeoutError("never sent"), intended, now)
                for connection in live:
                    connection.abort(TimeoutError("no answer by the end of the run"))
    recorder.stop()
    close_all(live)
