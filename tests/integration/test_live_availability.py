"""GET /events/{id}/live over Server-Sent Events, in-process: a snapshot on connect, then the new
availability after a booking; fed by the Redis Stream (with the relay running) or, embedded, by
the event store itself."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event, update

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.event_tails import StoreTail
from ticketflow.adapters.tables import events
from ticketflow.api.routes.live import StreamCaps
from ticketflow.domain import commands as cmd
from ticketflow.services.live_availability import LiveAvailability, SlowSubscriber

from ..builders import API, account, book, event_on_sale, problem
from .asgi_stream import ServerSentEvents, server_sent_events
from .conftest import Stack, running_app


def live(event_id: object) -> str:
    return f"{API}/events/{event_id}/live"


def availability(event: dict[str, Any]) -> dict[str, int]:
    return {t["ticket_type_id"]: t["available"] for t in event["data"]["ticket_types"]}


async def availability_reaching(
    stream: ServerSentEvents, expected: dict[str, int], within_seconds: float = 5.0
) -> dict[str, Any]:
    """The first event showing `expected`; fails if none comes within the deadline."""
    async with asyncio.timeout(within_seconds):
        while availability(event := await stream.next_event()) != expected:
            pass
    return event


async def test_a_subscriber_gets_a_snapshot_then_the_availability_after_a_booking(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(run_relay=True)  # with Redis: the relay publishes to the stream
    async with running_app(settings, clock) as running:
        sale = await event_on_sale(running.bus, totals=(10, 5))
        standard, premium = (tt.id for tt in sale.ticket_types)
        buyer = await account(running.bus)
        async with server_sent_events(running.app, live(sale.event.id)) as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            snapshot = await stream.next_event()
            assert snapshot["event"] == "availability"
            assert snapshot["data"]["event_id"] == str(sale.event.id)
            assert availability(snapshot) == {str(standard): 10, str(premium): 5}

            response = await book(running.client(), buyer, sale.event.id, (premium, 2))
            assert response.status_code == 201, response.text
            # Earlier events (the sale being set up) may still arrive first: each is a fresh
            # read, so wait for the one that shows the booking.
            update = await availability_reaching(stream, {str(standard): 10, str(premium): 3})
            assert update["id"]  # the stream position, for Last-Event-ID


async def test_without_asking_for_a_stream_the_availability_comes_once_as_json(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as running:
        sale = await event_on_sale(running.bus, totals=(7,))
        response = await running.client().get(live(sale.event.id))
        assert response.status_code == 200
        assert response.json() == {
            "event_id": str(sale.event.id),
            "ticket_types": [{"ticket_type_id": str(sale.ticket_types[0].id), "available": 7}],
        }


@pytest.mark.parametrize("accept", ["text/event-stream", "application/json"])
async def test_only_published_events_have_a_live_stream(
    stack: Stack, clock: ManualClock, accept: str
) -> None:
    async with running_app(stack.settings(), clock) as running:
        draft = await event_on_sale(running.bus, publish=False)
        client = running.client()
        for event_id in (draft.event.id, uuid.uuid4(), "not-an-id"):
            problem(await client.get(live(event_id), headers={"Accept": accept}), 404)


async def test_a_handshake_asks_the_catalog_copy_and_the_database_only_to_refuse(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as running:
        sale = await event_on_sale(running.bus)
        draft = await event_on_sale(running.bus, publish=False)
        client = running.client()
        asked: list[str] = []
        handshakes = asyncio.current_task()  # the client runs the app in this task

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # Only the handshakes' reads: consumers catching up on the events just created
            # read them too, in tasks of their own, whenever the machine lets them.
            if "FROM events" in statement and asyncio.current_task() is handshakes:
                asked.append(statement)

        engine = running.bus.engine.sync_engine
        assert (await client.get(live(sale.event.id))).status_code == 200  # copied here
        problem(await client.get(live(draft.event.id)), 404)  # a draft, copied as one
        event.listen(engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert (await client.get(live(sale.event.id))).status_code == 200
            assert asked == []
            async with running.bus.engine.begin() as connection:  # published behind its back
                await connection.execute(
                    update(events).where(events.c.id == draft.event.id).values(status="published")
                )
            assert (await client.get(live(draft.event.id))).status_code == 200
            assert asked, "the copy said draft: only a fresh read may refuse, or let in"
        finally:
            event.remove(engine, "before_cursor_execute", count)


async def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as running:
        bus = running.bus
        sale = await event_on_sale(bus, totals=(10,))
        buyer = await account(bus)
        hub = LiveAvailability(
            bus.engine, StoreTail(bus.engine, 0.01), coalesce_seconds=0, queue_size=1
        )
        try:
            slow, _ = await hub.subscribe(sale.event.id)
            brisk, _ = await hub.subscribe(sale.event.id)
            one = ((sale.ticket_types[0].id, 1),)
            for left in (9, 8):
                await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, one))
                update = await asyncio.wait_for(brisk.next(), 5)  # brisk keeps up
                assert update.available[sale.ticket_types[0].id] == left
            assert slow.dropped
            assert (await slow.next()).available[sale.ticket_types[0].id] == 9
            with pytest.raises(SlowSubscriber):
                await slow.next()
        finally:
            await hub.aclose()


async def test_a_reconnect_with_last_event_id_starts_from_a_fresh_snapshot(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as running:
        sale = await event_on_sale(running.bus, totals=(4,))
        buyer = await account(running.bus)
        one = ((sale.ticket_types[0].id, 1),)
        await running.bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, one))
        resumed = {"Last-Event-ID": "1700000000000-0"}
        async with server_sent_events(running.app, live(sale.event.id), resumed) as stream:
            snapshot = await stream.next_event()
            assert availability(snapshot) == {str(sale.ticket_types[0].id): 3}


async def test_an_open_stream_is_not_a_request_waiting_for_its_answer(
    stack: Stack, clock: ManualClock
) -> None:
    """Background rounds wait while requests wait for answers (services/requests_in_flight.py):
    live streams, answered at once and then kept open, must not hold the relay back."""
    settings = stack.settings(
        run_relay=True, busy_requests_in_flight=1, background_patience_seconds=30
    )
    async with running_app(settings, clock) as running:
        sale = await event_on_sale(running.bus, totals=(4,))
        (ticket_type,) = (tt.id for tt in sale.ticket_types)
        buyer = await account(running.bus)
        path = live(sale.event.id)
        async with (
            server_sent_events(running.app, path) as first,
            server_sent_events(running.app, path) as second,
        ):
            await first.next_event()
            await second.next_event()
            assert running.app.state.in_flight.count == 0
            response = await book(running.client(), buyer, sale.event.id, (ticket_type, 1))
            assert response.status_code == 201, response.text
            # Held back, the relay would publish this only after 30 s.
            await availability_reaching(first, {str(ticket_type): 3})
        assert running.app.state.in_flight.count == 0


async def test_a_client_past_its_live_streams_gets_429_and_its_place_back_when_one_ends(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(live_streams_per_ip=1)
    async with running_app(settings, clock) as running:
        sale = await event_on_sale(running.bus)
        path = live(sale.event.id)
        async with server_sent_events(running.app, path) as first:
            assert first.status == 200
            async with server_sent_events(running.app, path) as second:
                assert second.status == 429
                assert int(second.headers["retry-after"]) >= 1
            async with server_sent_events(running.app, path, client="198.51.100.9") as other:
                assert other.status == 200  # another address has its own
        async with server_sent_events(running.app, path) as again:
            assert again.status == 200


def test_a_process_serves_at_most_its_streams_whoever_asks() -> None:
    caps = StreamCaps(per_ip=5, per_process=2)
    assert caps.take("192.0.2.1") is None and caps.take("192.0.2.2") is None
    refused = caps.take("192.0.2.3")
    assert refused is not None and refused.retry_after >= 1
    caps.give_back("192.0.2.1")
    assert caps.take("192.0.2.3") is None
