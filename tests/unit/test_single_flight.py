"""Concurrent callers of one key share one call; a caller that leaves does not stop it."""

from __future__ import annotations

import asyncio

from ticketflow.adapters.single_flight import SingleFlight


async def test_concurrent_callers_share_one_call_and_its_answer() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()
    calls = 0

    async def ask() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiting = [asyncio.create_task(flight.run("k", ask)) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [42] * 100
    assert calls == 1
    assert await flight.run("k", ask) == 42 and calls == 2  # over: the next caller asks anew


async def test_a_caller_that_leaves_leaves_the_call_running_for_the_others() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = asyncio.Event()

    async def ask() -> int:
        await release.wait()
        return 7

    leaving = asyncio.create_task(flight.run("k", ask))
    staying = asyncio.create_task(flight.run("k", ask))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == 7
    assert leaving.cancelled()
