"""The outbox relay to Redis Streams, on PostgreSQL and a real Redis: every committed event is
published in seq order, at least once across crashes, by one relay at a time, never skipping an
event whose transaction commits after a later one; a consumer applies each event once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters import event_store
from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.event_store import EventMeta, StoredEvent
from ticketflow.adapters.event_streams import StreamGroupReader, StreamPublisher, decode
from ticketflow.bootstrap import build_bus
from ticketflow.domain import commands as cmd
from ticketflow.domain.events import EventPublished
from ticketflow.services.event_consumers import EventConsumer, consume_once
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.outbox_relay import OutboxRelay, Publisher, redis_relay

from ..builders import account, event_on_sale
from ..conftest import FAST_PASSWORDS, settings_for, wipe
from .conftest import flush

Identity = tuple[str, uuid.UUID, int]


@pytest.fixture
async def bus(postgresql_url: str, redis_url: str, clock: ManualClock) -> AsyncIterator[MessageBus]:
    """PostgreSQL and a flushed Redis; the relay is started by each test."""
    flush(redis_url)
    bus = build_bus(settings_for(postgresql_url, redis_url=redis_url), clock, FAST_PASSWORDS)
    await wipe(bus.engine)
    try:
        yield bus
    finally:
        assert bus.deps.redis is not None
        await bus.deps.redis.aclose()
        await bus.engine.dispose()


def redis_of(bus: MessageBus) -> Redis:
    assert bus.deps.redis is not None
    return bus.deps.redis


async def published(bus: MessageBus) -> list[StoredEvent]:
    entries = await redis_of(bus).xrange(bus.deps.settings.events_stream)
    return [decode(fields) for _, fields in entries]


async def stored(bus: MessageBus) -> list[StoredEvent]:
    async with bus.engine.connect() as connection:
        return await event_store.read_after(connection, 0, 1_000_000)


def relay_of(
    bus: MessageBus, publisher: Publisher | None = None, batch_size: int = 4
) -> OutboxRelay:
    relay = redis_relay(bus)
    return OutboxRelay(
        bus.engine,
        publisher or StreamPublisher(redis_of(bus), bus.deps.settings.events_stream, 10_000),
        bus.deps.clock,
        position=relay.position,
        batch_size=batch_size,
    )


async def some_changes(bus: MessageBus) -> None:
    """An event on sale, holds, a cancellation: a couple of dozen events over several streams."""
    sale = await event_on_sale(bus, totals=(10, 10))
    buyer = await account(bus)
    for tier in sale.ticket_types:
        booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier.id, 2),)))
    await bus.handle(cmd.CancelBooking(buyer.actor, booking.id))


def first_occurrences(events: Sequence[StoredEvent]) -> list[StoredEvent]:
    seen: set[int] = set()
    firsts = []
    for event in events:
        if event.seq not in seen:
            seen.add(event.seq)
            firsts.append(event)
    return firsts


class RelayCrashed(Exception):
    pass


class CrashingPublisher:
    """Publishes for real, then dies before the relay can store its position (on call `on`)."""

    def __init__(self, inner: Publisher, on: int) -> None:
        self.inner, self.on, self.calls = inner, on, 0

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        self.calls += 1
        await self.inner.publish(events)
        if self.calls == self.on:
            raise RelayCrashed


class BlockingPublisher:
    """Publishes for real, then hangs (holding the relay's position) until released."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.published, self.release = asyncio.Event(), asyncio.Event()

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        await self.inner.publish(events)
        self.published.set()
        await self.release.wait()

    async def run(self, relay: Awaitable[int]) -> asyncio.Task[int]:
        """Start `relay`; return once it has published and hangs (or fail if it died first)."""
        task = asyncio.ensure_future(relay)
        waiting = asyncio.ensure_future(self.published.wait())
        await asyncio.wait([task, waiting], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()  # its error, if it died
            raise AssertionError("the relay finished without publishing anything")
        assert self.published.is_set(), "the relay published nothing within 10 s"
        return task


def real_publisher(bus: MessageBus) -> StreamPublisher:
    return StreamPublisher(redis_of(bus), bus.deps.settings.events_stream, 10_000)


async def test_relay_publishes_every_committed_event_once_in_seq_order(bus: MessageBus) -> None:
    await some_changes(bus)
    relay = relay_of(bus, batch_size=4)
    count = await relay.relay_pending()
    events = await stored(bus)
    assert count == len(events) > 8
    assert await published(bus) == events  # the whole event, field for field
    assert await relay.relay_pending() == 0
    await some_changes(bus)
    await relay_of(bus).relay_pending()  # a new relay resumes from the stored position
    assert await published(bus) == await stored(bus)


async def consume_all(bus: MessageBus, group: str, member: str) -> list[Identity]:
    """A consumer group member applying everything there is; what its handler saw, in order."""
    seen: list[Identity] = []

    async def handler(_: AsyncConnection, event: StoredEvent) -> None:
        seen.append((event.stream_type, event.stream_id, event.version))

    reader = StreamGroupReader(redis_of(bus), bus.deps.settings.events_stream, group, member)
    await reader.ensure_group()
    consumer = EventConsumer(bus.engine, bus.deps.clock, group, handler)
    while await consume_once(reader, consumer, count=5):
        pass
    return seen


@pytest.mark.parametrize("death", ["exception after XADD", "task cancelled after XADD"])
async def test_a_relay_killed_mid_stream_resumes_and_a_consumer_applies_each_event_once(
    bus: MessageBus, death: str
) -> None:
    await some_changes(bus)
    if death == "exception after XADD":
        with pytest.raises(RelayCrashed):
            await relay_of(bus, CrashingPublisher(real_publisher(bus), on=2)).relay_pending()
    else:
        blocking = BlockingPublisher(real_publisher(bus))
        running = await blocking.run(relay_of(bus, blocking).relay_pending())
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    await relay_of(bus).relay_pending()  # restarted: resumes from the stored position

    events, delivered = await stored(bus), await published(bus)
    assert len(delivered) > len(events), "the batch in flight at the crash is published again"
    assert first_occurrences(delivered) == events  # every event, in order
    applied = await consume_all(bus, "tests", "member-1")
    assert applied == [(e.stream_type, e.stream_id, e.version) for e in events]


async def test_a_second_relay_skips_its_round_while_the_first_holds_the_position(
    bus: MessageBus,
) -> None:
    await some_changes(bus)
    blocking = BlockingPublisher(real_publisher(bus))
    # The first relay is mid-round, holding the position row.
    first = await blocking.run(relay_of(bus, blocking).relay_once())
    second = relay_of(bus)
    assert await second.relay_once() == 0
    blocking.release.set()
    assert await first == 4
    await second.relay_pending()
    assert await published(bus) == await stored(bus)  # no repeats, no reordering


async def test_relays_running_side_by_side_with_writers_publish_each_event_once_in_order(
    bus: MessageBus,
) -> None:
    writing = True

    async def keep_relaying(relay: OutboxRelay) -> None:
        while writing or await relay.relay_pending():
            await relay.relay_once()

    async def write() -> None:
        nonlocal writing
        try:
            await asyncio.gather(*(some_changes(bus) for _ in range(6)))
        finally:
            writing = False

    await asyncio.gather(write(), *(keep_relaying(relay_of(bus, batch_size=3)) for _ in range(3)))
    await relay_of(bus).relay_pending()
    assert await published(bus) == await stored(bus)


async def _late_writer(bus: MessageBus) -> AsyncConnection:
    """A transaction that has appended an event (drawn its seq) but not committed yet."""
    connection = await bus.engine.connect()
    await connection.begin()
    # As every unit of work does, it has written before it appends: it has its transaction id.
    await connection.execute(text("SELECT pg_current_xact_id()"))
    event = EventPublished(stream_id=uuid.uuid4(), version=2)
    await event_store.append(connection, [(event, EventMeta())], bus.deps.clock.now())
    return connection


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_an_event_committed_after_a_later_one_is_not_skipped(
    bus: MessageBus, outcome: str
) -> None:
    relay = relay_of(bus, batch_size=100)
    await some_changes(bus)
    await relay.relay_pending()
    before = len(await published(bus))
    late = await _late_writer(bus)
    try:
        await some_changes(bus)  # later seqs, committed first
        assert await relay.relay_pending() == 0, "published past a seq still in flight"
        await (late.commit() if outcome == "commit" else late.rollback())
    finally:
        await late.close()
    assert await relay.relay_pending() > 0
    delivered = await published(bus)
    assert delivered == await stored(bus)  # in seq order, the late event included if committed
    assert len(delivered) - before == len(await stored(bus)) - before


async def test_the_app_relays_in_the_background_when_redis_is_configured(
    postgresql_url: str, redis_url: str, clock: ManualClock
) -> None:
    from ticketflow.api.app import create_app

    settings = settings_for(
        postgresql_url, redis_url=redis_url, run_relay=True, relay_interval_seconds=0.01
    )
    # A bus of its own, on purpose: the database is emptied before the app (and its relay) starts,
    # so the relay never publishes what an earlier test left behind.
    cleaner = build_bus(settings, clock, FAST_PASSWORDS)
    await wipe(cleaner.engine)
    await cleaner.engine.dispose()
    flush(redis_url)
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with app.router.lifespan_context(app):
        bus: MessageBus = app.state.bus
        await some_changes(bus)
        expected = await stored(bus)
        deadline = asyncio.get_running_loop().time() + 10
        while len(await published(bus)) < len(expected):  # polled: the relay runs on its own
            assert asyncio.get_running_loop().time() < deadline, "not relayed within 10 s"
            await asyncio.sleep(0.01)
        assert await published(bus) == expected


async def test_a_group_member_restarted_after_a_crash_gets_its_entries_again(
    bus: MessageBus,
) -> None:
    await some_changes(bus)
    await relay_of(bus).relay_pending()
    events = await stored(bus)
    seen: list[Identity] = []

    async def handler(_: AsyncConnection, event: StoredEvent) -> None:
        seen.append((event.stream_type, event.stream_id, event.version))

    key = bus.deps.settings.events_stream
    crashed = StreamGroupReader(redis_of(bus), key, "mailer", "host:1")
    await crashed.ensure_group()
    consumer = EventConsumer(bus.engine, bus.deps.clock, "mailer", handler)
    taken = await crashed.read(5)
    for delivery in taken[:2]:  # applied two, then died before acknowledging any
        await consumer.apply(delivery.event)
    restarted = StreamGroupReader(redis_of(bus), key, "mailer", "host:1")
    while await consume_once(restarted, consumer, count=5):
        pass
    assert seen == [(e.stream_type, e.stream_id, e.version) for e in events]


async def test_a_member_adopts_the_unacknowledged_entries_of_one_that_went_away(
    bus: MessageBus,
) -> None:
    await some_changes(bus)
    await relay_of(bus).relay_pending()
    key = bus.deps.settings.events_stream
    gone = StreamGroupReader(redis_of(bus), key, "webhooks", "host:1")
    await gone.ensure_group()
    taken = await gone.read(3)
    heir = StreamGroupReader(redis_of(bus), key, "webhooks", "host:2")
    adopted = await heir.claim_stale(min_idle_ms=0, count=10)
    assert [d.entry_id for d in adopted] == [d.entry_id for d in taken]
    await heir.ack(adopted)
    pending: Any = await redis_of(bus).xpending(key, "webhooks")
    assert pending["pending"] == 0


async def test_a_relay_on_sqlite_publishes_every_event_in_order(
    sqlite_url: str, redis_url: str, clock: ManualClock
) -> None:
    """The embedded database with Redis beside it: one relay (its write transaction is the
    lock), and no holes to wait for, since SQLite writers take turns."""
    flush(redis_url)
    bus = build_bus(settings_for(sqlite_url, redis_url=redis_url), clock, FAST_PASSWORDS)
    try:
        await wipe(bus.engine)
        await some_changes(bus)
        await relay_of(bus, batch_size=5).relay_pending()
        assert await published(bus) == await stored(bus)
    finally:
        await redis_of(bus).aclose()
        await bus.engine.dispose()


async def test_a_group_reader_carries_on_after_redis_lost_everything(bus: MessageBus) -> None:
    """Redis is not the record: after a flush the relay goes on from its stored position and a
    reader recreates its group; events published before the flush are in the store only."""
    await some_changes(bus)
    await relay_of(bus).relay_pending()
    reader = StreamGroupReader(redis_of(bus), bus.deps.settings.events_stream, "live", "host:1")
    await reader.ensure_group()
    assert await reader.read(100)
    await redis_of(bus).flushall()
    assert await reader.read(100) == []  # its group is gone: made again
    await some_changes(bus)
    await relay_of(bus).relay_pending()
    after_flush = [delivery.event for delivery in await reader.read(1000)]
    assert after_flush and after_flush == (await stored(bus))[-len(after_flush) :]
