"""Background rounds wait for a lull in requests, never longer than their patience."""

from __future__ import annotations

import asyncio

from ticketflow.services.requests_in_flight import RequestsInFlight


async def _settled(task: asyncio.Task[None]) -> bool:
    for _ in range(5):  # let the task run as far as it can without anything changing
        await asyncio.sleep(0)
    return task.done()


async def test_a_quiet_process_does_not_wait() -> None:
    in_flight = RequestsInFlight(busy_above=2, patience_seconds=30)
    in_flight.started()
    in_flight.started()
    assert await _settled(asyncio.create_task(in_flight.lull()))


async def test_a_busy_process_waits_until_its_requests_fall_to_the_threshold() -> None:
    in_flight = RequestsInFlight(busy_above=2, patience_seconds=30)
    for _ in range(4):
        in_flight.started()
    waiting = asyncio.create_task(in_flight.lull())
    assert not await _settled(waiting)
    in_flight.finished()
    assert not await _settled(waiting)  # 3 still in flight
    in_flight.finished()
    assert await _settled(waiting)
    assert in_flight.count == 2


async def test_patience_bounds_the_wait_however_busy() -> None:
    in_flight = RequestsInFlight(busy_above=1, patience_seconds=0.01)
    for _ in range(100):
        in_flight.started()
    async with asyncio.timeout(10):  # a generous bound: failing it means the wait never ended
        await in_flight.lull()
    assert in_flight.count == 100


async def test_zero_turns_waiting_off() -> None:
    in_flight = RequestsInFlight(busy_above=0, patience_seconds=30)
    for _ in range(1000):
        in_flight.started()
    assert await _settled(asyncio.create_task(in_flight.lull()))


def test_it_tells_when_the_process_becomes_busy_and_calm_again() -> None:
    in_flight = RequestsInFlight(busy_above=2, patience_seconds=30)
    told: list[bool] = []
    in_flight.on_busy_change = told.append
    for _ in range(5):
        in_flight.started()
    for _ in range(5):
        in_flight.finished()
    assert told == [True, False]  # once each way, at the threshold
