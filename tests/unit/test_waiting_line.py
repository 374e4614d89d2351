"""The load-shedding line: a bounded number inside, the rest wait in order for a bounded time."""

from __future__ import annotations

import asyncio

from ticketflow.api.load_shedding import WaitingLine, in_line

from ..builders import API

PATIENT = 5.0  # long enough never to run out while a test hands places on


async def test_a_place_given_up_goes_to_the_first_one_waiting() -> None:
    line = WaitingLine(capacity=1, patience=PATIENT)
    assert await line.enter()
    second = asyncio.create_task(line.enter())
    third = asyncio.create_task(line.enter())
    await asyncio.sleep(0)  # both are in the line now
    assert not second.done() and not third.done()
    line.leave()
    assert await second
    assert not third.done()
    line.leave()
    assert await third
    line.leave()
    assert line.inside == 0


async def test_who_waits_past_the_patience_is_refused_and_leaves_the_line() -> None:
    line = WaitingLine(capacity=1, patience=0.01)
    assert await line.enter()
    assert not await line.enter()  # the patience under test, not a synchronization
    line.leave()
    assert line.inside == 0
    assert await line.enter()  # nobody refused is left holding or awaiting a place


async def test_nobody_queues_behind_those_already_waiting() -> None:
    line = WaitingLine(capacity=2, patience=PATIENT)
    assert await line.enter()
    assert await line.enter()
    waiting = asyncio.create_task(line.enter())
    await asyncio.sleep(0)
    line.leave()  # the place goes to the one waiting, not to a newcomer
    assert await waiting
    assert line.inside == 2


def test_probes_streams_provider_callbacks_and_the_booking_hot_path_do_not_wait_in_line() -> None:
    def scope(method: str, path: str) -> dict[str, str]:
        return {"method": method, "path": path}

    assert not in_line(scope("GET", "/health"))
    assert not in_line(scope("GET", "/metrics"))
    assert not in_line(scope("GET", f"{API}/events/0190c5d2-0000-7000-8000-000000000000/live"))
    assert not in_line(scope("POST", f"{API}/bookings"))
    assert not in_line(scope("POST", f"{API}/payments/webhook"))
    assert in_line(scope("GET", f"{API}/bookings"))
    assert in_line(scope("POST", f"{API}/bookings/0190c5d2-0000-7000-8000-000000000000/payments"))
    assert in_line(scope("GET", f"{API}/events"))
