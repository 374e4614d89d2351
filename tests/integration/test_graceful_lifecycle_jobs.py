"""Background jobs stop at shutdown even when one ignores the first cancellation (as a job can
on Python 3.11 when `asyncio.wait_for` inside it swallows the cancel)."""

from __future__ import annotations

import asyncio

from ticketflow.services.graceful_shutdown import stop_background_jobs


async def test_a_job_that_swallows_a_cancel_is_asked_again() -> None:
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 1:
                    continue  # swallowed, as wait_for may
                raise

    async def polite() -> None:
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)  # both running
    await stop_background_jobs(tasks, patience=5)
    assert all(task.done() for task in tasks)
    assert cancels == 2


async def test_a_job_that_never_stops_is_given_up_on_after_the_patience() -> None:
    deaf_until = asyncio.Event()

    async def deaf() -> None:
        while not deaf_until.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    await stop_background_jobs([task], patience=0.2)  # returns instead of hanging
    assert not task.done()
    deaf_until.set()  # leave nothing behind
    await stop_background_jobs([task], patience=5)
    assert task.done()
