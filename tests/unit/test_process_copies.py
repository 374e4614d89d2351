"""A process copy answers while young, is renewed once past a share of its freshness (answering
meanwhile), and is never answered once as old as its freshness; the clock is moved, not waited."""

from __future__ import annotations

import asyncio

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.process_copies import RENEW_AFTER_SHARE_OF_FRESHNESS, Kept, ProcessCopies

FRESH_FOR = 1.0
YOUNG = FRESH_FOR * RENEW_AFTER_SHARE_OF_FRESHNESS * 0.9
RENEWING = FRESH_FOR * (RENEW_AFTER_SHARE_OF_FRESHNESS + 1) / 2  # past the share, not yet lapsed


class Source:
    """What a renewal reads (in the app: the shared cache or the database), counting reads."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.value, self.reads = clock, {"left": 10}, 0
        self.release = asyncio.Event()
        self.release.set()

    async def read(self, key: str) -> Kept[dict[str, int]]:
        self.reads += 1
        value, as_of = dict(self.value), self.clock.now().timestamp()  # as the read began
        await self.release.wait()
        return Kept(value, as_of)


async def test_a_young_copy_answers_without_reading() -> None:
    clock = ManualClock()
    source = Source(clock)
    copies = ProcessCopies(clock, FRESH_FOR, source.read)
    assert await copies.get("e") == ({"left": 10}, False)
    clock.advance(YOUNG)
    assert await copies.get("e") == ({"left": 10}, True)
    assert source.reads == 1


async def test_past_a_share_of_its_freshness_one_renewal_starts_and_the_copy_still_answers() -> (
    None
):
    clock = ManualClock()
    source = Source(clock)
    copies = ProcessCopies(clock, FRESH_FOR, source.read)
    await copies.get("e")
    source.value, source.release = {"left": 7}, asyncio.Event()
    clock.advance(RENEWING)
    answers = [await copies.get("e") for _ in range(50)]
    assert answers == [({"left": 10}, True)] * 50  # answered from memory, renewal in flight
    source.release.set()
    await copies.settled()
    assert source.reads == 2  # one renewal for the 50 readers
    assert await copies.get("e") == ({"left": 7}, True)


async def test_a_copy_as_old_as_its_freshness_is_never_answered() -> None:
    clock = ManualClock()
    source = Source(clock)
    copies = ProcessCopies(clock, FRESH_FOR, source.read)
    await copies.get("e")
    source.value = {"left": 3}
    clock.advance(FRESH_FOR)
    assert await copies.get("e") == ({"left": 3}, False)  # waited for the renewal


async def test_an_unchanged_renewal_keeps_the_same_object() -> None:
    clock = ManualClock()
    source = Source(clock)
    copies = ProcessCopies(clock, FRESH_FOR, source.read)
    first, _ = await copies.get("e")
    clock.advance(FRESH_FOR)
    again, hit = await copies.get("e")
    assert not hit and again is first  # what was derived from it (a body, an ETag) still holds


async def test_a_renewal_begun_before_a_forget_is_not_kept() -> None:
    clock = ManualClock()
    source = Source(clock)
    copies = ProcessCopies(clock, FRESH_FOR, source.read)
    await copies.get("e")
    source.release = asyncio.Event()
    clock.advance(RENEWING)
    await copies.get("e")  # starts a renewal...
    await asyncio.sleep(0)  # ...which reads the old value, and waits
    copies.forget("e")
    source.value = {"left": 1}
    reader = asyncio.create_task(copies.get("e"))  # starts its own renewal, not the old one
    source.release.set()
    assert await reader == ({"left": 1}, False)
    await copies.settled()
    assert await copies.get("e") == ({"left": 1}, True)
