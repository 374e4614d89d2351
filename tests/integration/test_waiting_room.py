"""The fair waiting room (issue 19) over HTTP, with Redis and embedded: configuring it on an
event, one place per account, the pre-queue shuffled and later joiners in arrival order,
admission tokens on both booking doors (invariant 9), abandoned places skipped, and a lost line
that closes the room instead of admitting anyone twice."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import select, text

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import domain_events
from ticketflow.adapters.waiting_rooms import LocalRoomStates
from ticketflow.api.load_shedding import heard_by_the_room
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import (
    API,
    Account,
    EventOnSale,
    account,
    book,
    event_body,
    event_on_sale,
    problem,
    signed_in_again,
)
from ..invariants import assert_invariants
from .conftest import Stack, flush, running_app

ROOM = {"enabled": True, "admit_per_minute": 600, "session_minutes": 10}  # 10 a second
ADMISSION = "TicketFlow-Admission"
NOT_ADMITTED = "urn:ticketflow:problem:not-admitted"


async def room_sale(
    bus: MessageBus, clock: ManualClock, *, sale_in: float = 30, **room: Any
) -> EventOnSale:
    """A published event with two ticket types whose sale opens in `sale_in` seconds, its
    waiting room on (the pre-queue open now)."""
    return await event_on_sale(
        bus,
        totals=(100, 50),
        sales_start=clock.now() + timedelta(seconds=sale_in),
        waiting_room={**ROOM, **room},
    )


async def join(client: httpx.AsyncClient, buyer: Account, event_id: UUID) -> dict[str, Any]:
    answer = await client.post(f"{API}/events/{event_id}/queue", headers=buyer.headers)
    assert answer.status_code == 200, answer.text
    place: dict[str, Any] = answer.json()
    return place


async def look(
    client: httpx.AsyncClient, buyer: Account, event_id: UUID, place: dict[str, Any]
) -> dict[str, Any]:
    answer = await client.get(
        f"{API}/events/{event_id}/queue/{place['ticket_id']}", headers=buyer.headers
    )
    assert answer.status_code == 200, answer.text
    seen: dict[str, Any] = answer.json()
    return seen


async def book_admitted(
    client: httpx.AsyncClient,
    buyer: Account,
    sale: EventOnSale,
    token: str | None,
    *lines: tuple[UUID, int],
) -> httpx.Response:
    headers = {**buyer.headers, **({ADMISSION: token} if token else {})}
    body = {
        "event_id": str(sale.event.id),
        "lines": [{"ticket_type_id": str(tt), "quantity": q} for tt, q in lines or [sale.line()]],
    }
    return await client.post(f"{API}/bookings", json=body, headers=headers)


async def admitted(
    client: httpx.AsyncClient, clock: ManualClock, sale: EventOnSale, buyer: Account
) -> dict[str, Any]:
    """`buyer`'s place, once the sale is open and their turn came (the first in line)."""
    place = await join(client, buyer, sale.event.id)
    assert sale.event.sales_start is not None
    clock.advance(max(0.0, (sale.event.sales_start - clock.now()).total_seconds()) + 1)
    place = await look(client, buyer, sale.event.id, place)
    assert place["state"] == "admitted", place
    ends = datetime.fromisoformat(place["admission_expires_at"])
    assert ends - clock.now() == timedelta(minutes=ROOM["session_minutes"])  # admitted just now
    return place


async def test_the_room_is_configured_on_the_event_and_its_changes_are_audited(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client, organizer = app.client(), await account(app.bus, Role.MANAGER)
        body = event_body(clock.now(), waiting_room={"admit_per_minute": 120})
        made = await client.post(f"{API}/events", json=body, headers=organizer.headers)
        assert made.status_code == 201, made.text
        assert made.json()["waiting_room"] == {
            "enabled": True,
            "opens_at": None,
            "admit_per_minute": 120,
            "session_minutes": 10,
        }
        event_id = made.json()["id"]
        changed = await client.patch(
            f"{API}/events/{event_id}",
            json={"waiting_room": {"enabled": False, "admit_per_minute": "auto"}},
            headers=organizer.headers,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["waiting_room"]["admit_per_minute"] == "auto"
        removed = await client.patch(
            f"{API}/events/{event_id}", json={"waiting_room": None}, headers=organizer.headers
        )
        assert removed.json()["waiting_room"] is None
        shown = await client.get(f"{API}/events/{event_id}", headers=organizer.headers)
        assert shown.json()["waiting_room"] is None
        async with app.bus.engine.connect() as connection:
            recorded = (
                await connection.execute(
                    select(domain_events.c.type, domain_events.c.data)
                    .where(domain_events.c.stream_id == UUID(event_id))
                    .order_by(domain_events.c.version)
                )
            ).all()
        assert [row.type for row in recorded] == ["event.created", "event.updated", "event.updated"]
        assert recorded[0].data["waiting_room"]["admit_per_minute"] == 120
        assert recorded[1].data["changes"]["waiting_room"] == {
            "enabled": False,
            "opens_at": None,
            "admit_per_minute": "auto",
            "session_minutes": 10,
        }
        assert recorded[2].data["changes"] == {"waiting_room": None}


@pytest.mark.parametrize(
    ("room", "field"),
    [
        ({"admit_per_minute": 0}, "waiting_room.admit_per_minute"),
        ({"session_minutes": 500}, "waiting_room.session_minutes"),
        ({"admit_per_minute": "fast"}, "waiting_room.admit_per_minute"),
    ],
)
async def test_a_bad_room_is_a_422_naming_its_field(
    client: httpx.AsyncClient, clock: ManualClock, room: dict[str, Any], field: str
) -> None:
    from ..builders import app_bus, error_fields

    organizer = await account(app_bus(client), Role.MANAGER)
    body = event_body(clock.now(), waiting_room=room)
    answer = await client.post(f"{API}/events", json=body, headers=organizer.headers)
    assert any(named.startswith(field) for named in error_fields(answer)), answer.text


async def test_the_pre_queue_opening_after_the_sale_is_a_422(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    from ..builders import app_bus, error_fields

    organizer = await account(app_bus(client), Role.MANAGER)
    sale_opens = clock.now() + timedelta(hours=1)
    body = event_body(
        clock.now(),
        sales_start=sale_opens,
        waiting_room={"opens_at": (sale_opens + timedelta(minutes=1)).isoformat()},
    )
    answer = await client.post(f"{API}/events", json=body, headers=organizer.headers)
    assert error_fields(answer) == {"waiting_room.opens_at"}


async def test_one_account_in_two_browsers_keeps_one_place_that_only_it_can_see(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock)
        buyer = await account(app.bus)
        other_browser = await signed_in_again(app.bus, buyer)
        first = await join(app.client(), buyer, sale.event.id)
        again = await join(app.client("203.0.113.9"), other_browser, sale.event.id)
        assert again["ticket_id"] == first["ticket_id"]
        assert first["state"] == "waiting" and first["position"] is None  # pre-queue: undrawn
        assert first["eta_seconds"] == 30  # the opening, 30 s away
        assert first["look_again_seconds"] == 7  # a quarter of that: the heartbeat's pace
        assert first["price_range"] == {"min_minor": 1000, "max_minor": 2000, "currency": "EUR"}
        stranger = await account(app.bus)
        peeked = await app.client().get(
            f"{API}/events/{sale.event.id}/queue/{first['ticket_id']}", headers=stranger.headers
        )
        problem(peeked, 404)


async def test_the_pre_queue_looks_again_as_its_drawn_turn_nears_not_all_at_the_opening(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, admit_per_minute=6)  # a turn every 10 s
        buyers = [await account(app.bus) for _ in range(6)]
        places = {buyer: await join(client, buyer, sale.event.id) for buyer in buyers}
        told = {buyer: await look(client, buyer, sale.event.id, places[buyer]) for buyer in buyers}
        assert {(seen["position"], seen["eta_seconds"]) for seen in told.values()} == {(None, 30)}
        clock.advance(30)  # the sale opens: the draw is shown
        drawn = {b: (await look(client, b, sale.event.id, places[b]))["position"] for b in buyers}
        # A quarter of the wait its draw gives it: the opening's 30 s and 10 s a turn. Before
        # the opening a process knows a place as the line answered its join, whose later
        # joiners may have drawn places ahead of it: never told to look later than that.
        due = {buyer: (30 + 10 * drawn[buyer]) // 4 for buyer in buyers}
        paces = {buyer: told[buyer]["look_again_seconds"] for buyer in buyers}
        assert all(7 <= paces[buyer] <= due[buyer] for buyer in buyers)
        assert paces[buyers[-1]] == due[buyers[-1]]  # the last to join knew its draw whole


async def test_the_pre_queue_goes_first_then_later_joiners_in_arrival_order(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock)
        early = [await account(app.bus) for _ in range(6)]
        late = [await account(app.bus) for _ in range(4)]
        places = {buyer: await join(client, buyer, sale.event.id) for buyer in early}
        clock.advance(30)  # the sale opens: the pre-queue is drawn
        places |= {buyer: await join(client, buyer, sale.event.id) for buyer in late}
        seen = {buyer: await look(client, buyer, sale.event.id, places[buyer]) for buyer in places}
        assert sorted(seen[buyer]["position"] for buyer in early) == list(range(1, 7))
        assert [seen[buyer]["position"] for buyer in late] == [7, 8, 9, 10]
        assert seen[late[0]]["eta_seconds"] == 1  # 7 places at 10 a second, rounded up
        order: list[Account] = []
        for _ in range(10):
            clock.advance(0.1)  # one more admission earned
            for buyer in places:
                seen[buyer] = await look(client, buyer, sale.event.id, places[buyer])
            (newly,) = {b for b in places if seen[b]["state"] == "admitted"} - set(order)
            order.append(newly)
        assert set(order[:6]) == set(early)
        assert order[6:] == late
        assert all(seen[buyer]["admission_token"] for buyer in places)


async def test_bookings_need_an_admission_on_the_hot_path_and_the_ordinary_route(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock)
        buyer = await account(app.bus)
        place = await admitted(app.client(), clock, sale, buyer)
        token = place["admission_token"]
        two_lines = (sale.line(1, 0), sale.line(1, 1))  # the ordinary route's
        for lines in ((sale.line(),), two_lines):
            refused = problem(await book_admitted(client, buyer, sale, None, *lines), 403)
            assert refused["type"] == NOT_ADMITTED
            forged = await book_admitted(client, buyer, sale, token[:-3] + "xyz", *lines)
            assert problem(forged, 403)["type"] == NOT_ADMITTED
            held = await book_admitted(client, buyer, sale, token, *lines)
            assert held.status_code == 201, held.text
        await assert_invariants(app.bus.engine)


async def test_an_admission_is_refused_on_another_event_to_another_buyer_and_once_expired(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock)
        other_sale = await room_sale(app.bus, clock)
        buyer, thief = await account(app.bus), await account(app.bus)
        token = (await admitted(app.client(), clock, sale, buyer))["admission_token"]
        wrong_event = await book_admitted(client, buyer, other_sale, token)
        assert "another event" in problem(wrong_event, 403)["detail"]
        stolen = await book_admitted(client, thief, sale, token)
        assert "another buyer" in problem(stolen, 403)["detail"]
        clock.advance(10 * 60)  # the session ends
        buyer = await signed_in_again(app.bus, buyer)
        expired = await book_admitted(client, buyer, sale, token)
        assert "session has ended" in problem(expired, 403)["detail"]
        place = await look(client, buyer, sale.event.id, await join(client, buyer, sale.event.id))
        assert place["state"] == "expired" and place["admission_token"] is None


async def test_a_room_turned_off_books_as_before_without_any_admission(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock, enabled=False)
        clock.advance(30)
        buyer = await account(app.bus)
        assert (await book(app.client(), buyer, sale.event.id, sale.line())).status_code == 201
        joined = await app.client().post(
            f"{API}/events/{sale.event.id}/queue", headers=buyer.headers
        )
        problem(joined, 409)


async def test_a_place_nobody_looks_at_for_a_minute_is_skipped_and_the_line_moves_on(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=90, admit_per_minute=60)  # one a second
        gone, staying = await account(app.bus), await account(app.bus)
        gone_place = await join(client, gone, sale.event.id)
        staying_place = await join(client, staying, sale.event.id)
        for _ in range(3):  # only one of them keeps looking, up to the opening
            clock.advance(30)
            await look(client, staying, sale.event.id, staying_place)
        clock.advance(1)  # one admission: whoever drew the first place, the other one is next
        assert (await look(client, staying, sale.event.id, staying_place))["state"] == "admitted"
        clock.advance(1)
        assert (await look(client, gone, sale.event.id, gone_place))["state"] == "expired"


async def test_the_room_admits_no_more_buyers_than_tickets_are_left_for_them(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await event_on_sale(  # 3 tickets; 10 admissions a second; 1-minute sessions
            app.bus,
            totals=(2, 1),
            sales_start=clock.now() + timedelta(seconds=30),
            waiting_room={**ROOM, "session_minutes": 1},
        )
        buyers = [await account(app.bus) for _ in range(6)]
        places = {buyer: await join(client, buyer, sale.event.id) for buyer in buyers}

        async def looked() -> dict[Account, dict[str, Any]]:
            return {b: await look(client, b, sale.event.id, places[b]) for b in buyers}

        def in_state(seen: dict[Account, dict[str, Any]], state: str) -> list[Account]:
            return [buyer for buyer in buyers if seen[buyer]["state"] == state]

        clock.advance(31)  # the sale opened a second ago: 10 admissions earned, 3 tickets
        seen = await looked()
        first = in_state(seen, "admitted")
        assert len(first) == 3
        assert {place["tickets_left"] for place in seen.values()} == {3}
        holder = first[0]
        token = seen[holder]["admission_token"]
        held = await book_admitted(client, holder, sale, token, sale.line(1, 0))
        assert held.status_code == 201, held.text
        clock.advance(1)
        seen = await looked()  # 2 tickets left, 2 admissions outstanding: nobody more
        assert in_state(seen, "admitted") == first
        assert seen[in_state(seen, "waiting")[0]]["tickets_left"] == 2
        clock.advance(30)
        await looked()  # the waiting keep looking (their heartbeat)
        clock.advance(30)  # the sessions end, two unused: their tickets go to the next in line
        seen = await looked()
        assert in_state(seen, "expired") == first
        assert len(in_state(seen, "admitted")) == 2
        await assert_invariants(app.bus.engine)


async def test_a_room_that_cant_read_its_tickets_left_admits_nobody_and_keeps_its_places(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=0, admit_per_minute=60)
        buyer = await account(app.bus)
        place = await join(client, buyer, sale.event.id)
        # The availability read model unreadable (a real error from the database, whatever
        # the statement caches hold), for longer than a place may go unseen.
        rename = "ALTER TABLE rm_availability RENAME COLUMN {} TO {}"
        async with app.bus.engine.begin() as db:
            await db.execute(text(rename.format("available", "available_away")))
        try:
            for _ in range(3):
                clock.advance(30)
                seen = await look(client, buyer, sale.event.id, place)
                assert seen["state"] == "waiting" and seen["position"] == 1
        finally:
            async with app.bus.engine.begin() as db:
                await db.execute(text(rename.format("available_away", "available")))
        clock.advance(1)  # its looks were its heartbeats: its turn, now the tickets are known
        assert (await look(client, buyer, sale.event.id, place))["state"] == "admitted"


async def test_a_stream_of_an_admitted_place_sends_its_token_and_ends(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock)
        buyer = await account(app.bus)
        place = await admitted(app.client(), clock, sale, buyer)
        streamed = await app.client().get(
            f"{API}/events/{sale.event.id}/queue/{place['ticket_id']}/stream",
            headers=buyer.headers,
        )
        assert streamed.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in streamed.text.split("\n\n") if f]
        assert len(frames) == 1 and frames[0].startswith("event: place\ndata: ")
        assert '"admission_token":"' + place["admission_token"] in frames[0]


async def test_a_stream_of_a_waiting_place_turns_admitted_with_its_token_when_its_turn_comes(
    stack: Stack, clock: ManualClock
) -> None:
    from .asgi_stream import server_sent_events

    async with running_app(stack.settings(waiting_room_stream_seconds=0.01), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=0, admit_per_minute=60)  # one a second
        first, second = await account(app.bus), await account(app.bus)
        await join(client, first, sale.event.id)
        place = await join(client, second, sale.event.id)
        path = f"{API}/events/{sale.event.id}/queue/{place['ticket_id']}/stream"
        async with server_sent_events(app.app, path, second.headers) as stream:
            assert stream.status == 200
            frame = await stream.next_event()
            assert frame["event"] == "place"
            assert frame["data"]["state"] == "waiting" and frame["data"]["position"] == 2
            assert frame["data"]["admission_token"] is None
            clock.advance(2)  # two admissions earned: the first in line, then this place
            while frame["data"]["state"] == "waiting":
                frame = await stream.next_event()
            assert frame["data"]["state"] == "admitted", frame
            token = frame["data"]["admission_token"]
            assert token
        held = await book_admitted(client, second, sale, token)
        assert held.status_code == 201, held.text


async def test_a_paid_booking_spends_its_admission(
    stack: Stack, clock: ManualClock, tmp_path: Any
) -> None:
    from ticketflow.domain import commands as cmd

    from ..builders import app_bus
    from .paid_bookings import paying_client

    async with paying_client(stack.settings(), clock, tmp_path / "ledger.db") as client:
        sale = await room_sale(app_bus(client), clock)
        buyer = await account(app_bus(client))
        token = (await admitted(client, clock, sale, buyer))["admission_token"]
        first = await book_admitted(client, buyer, sale, token)
        assert first.status_code == 201, first.text
        second = await book_admitted(client, buyer, sale, token)
        assert second.status_code == 201, second.text  # held, not paid: the session goes on
        await app_bus(client).handle(
            cmd.PayForBooking(buyer.actor, UUID(first.json()["id"]), "pm_card_visa")
        )
        spent = await book_admitted(client, buyer, sale, token)
        assert "spent" in problem(spent, 403)["detail"]


async def test_a_lost_line_closes_the_room_and_admits_nobody_again(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, admit_per_minute=60)  # one a second
        first, waiting, newcomer = [await account(app.bus) for _ in range(3)]
        token = (await admitted(client, clock, sale, first))["admission_token"]
        place = await join(client, waiting, sale.event.id)
        if stack.redis_url:
            flush(stack.redis_url)  # Redis emptied (or restarted) mid-queue
        else:
            states = app.bus.deps.rooms.states
            assert isinstance(states, LocalRoomStates)
            states.forget_all()  # the embedded process's rooms, as after a restart
        clock.advance(5)
        refused = await client.post(f"{API}/events/{sale.event.id}/queue", headers=newcomer.headers)
        assert problem(refused, 503)["type"] == "urn:ticketflow:problem:waiting-room-unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        lost = await client.get(
            f"{API}/events/{sale.event.id}/queue/{place['ticket_id']}", headers=waiting.headers
        )
        problem(lost, 503)
        again = await client.post(f"{API}/events/{sale.event.id}/queue", headers=first.headers)
        problem(again, 503)  # no second place, no second admission
        # Admissions already given stay good: they are signed, not stored.
        assert (await book_admitted(client, first, sale, token)).status_code == 201
        assert (await book_admitted(client, waiting, sale, None)).status_code == 403


async def test_two_instances_share_one_room_and_admit_each_place_once_in_turn(
    redis_stack: Stack, clock: ManualClock
) -> None:
    settings = redis_stack.settings()
    async with (
        running_app(settings, clock) as one,
        running_app(settings, clock, wipe_first=False) as two,
    ):
        sale = await room_sale(one.bus, clock, sale_in=0)  # no pre-queue: arrival order
        buyers = [await account(one.bus) for _ in range(8)]
        clients = [one.client(), two.client()]
        places = [
            await join(clients[n % 2], buyer, sale.event.id) for n, buyer in enumerate(buyers)
        ]
        assert [place["position"] for place in places] == list(range(1, 9))
        again = await join(clients[1], buyers[0], sale.event.id)  # the other instance
        assert again["ticket_id"] == places[0]["ticket_id"]
        order: list[int] = []
        for step in range(8):
            clock.advance(0.1)  # one admission earned, taken by whichever instance looks first
            seen = [
                await look(clients[(n + step) % 2], buyer, sale.event.id, places[n])
                for n, buyer in enumerate(buyers)
            ]
            (newly,) = {n for n, place in enumerate(seen) if place["state"] == "admitted"} - set(
                order
            )
            order.append(newly)
        assert order == list(range(8))
        tokens = [
            (await look(client, buyers[3], sale.event.id, places[3]))["admission_token"]
            for client in clients
        ]
        assert tokens[0] == tokens[1]  # the same admission, whichever instance is asked
        held = await book_admitted(clients[1], buyers[3], sale, tokens[0])
        assert held.status_code == 201, held.text


async def test_nobody_joins_the_room_of_a_cancelled_event(stack: Stack, clock: ManualClock) -> None:
    from ticketflow.domain import commands as cmd

    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock)
        await app.bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
        buyer = await account(app.bus)
        joined = await app.client().post(
            f"{API}/events/{sale.event.id}/queue", headers=buyer.headers
        )
        assert problem(joined, 409)["type"] == "urn:ticketflow:problem:sales-closed"


async def test_a_room_turned_on_behind_a_stale_copy_still_refuses_holds_without_admission(
    stack: Stack, clock: ManualClock
) -> None:
    """The copy the booking is first checked against (kept an hour here) says the room is off;
    the hold's own transaction reads it on, and refuses, batched or not."""
    from sqlalchemy import update

    from ticketflow.adapters.tables import events

    async with running_app(stack.settings(catalog_snapshot_ttl_seconds=3600), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=0, enabled=False)
        buyer = await account(app.bus)
        assert (await book_admitted(client, buyer, sale, None)).status_code == 201  # copied
        async with app.bus.engine.begin() as connection:  # on, behind this process's back
            await connection.execute(  # as another process's save_event: a new version
                update(events)
                .where(events.c.id == sale.event.id)
                .values(waiting_room=ROOM, version=events.c.version + 1)
            )
        for lines in ((sale.line(),), (sale.line(1, 0), sale.line(1, 1))):
            refused = await book_admitted(client, buyer, sale, None, *lines)
            assert "just turned on" in problem(refused, 403)["detail"]
        await assert_invariants(app.bus.engine)


async def test_the_room_is_measured_per_event(stack: Stack, clock: ManualClock) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=90, admit_per_minute=60)
        gone, staying = await account(app.bus), await account(app.bus)
        places = [await join(client, buyer, sale.event.id) for buyer in (gone, staying)]
        for _ in range(3):  # only one keeps looking, up to the opening
            clock.advance(30)
            await look(client, staying, sale.event.id, places[1])
        clock.advance(2)  # two turns: one admitted, one skipped
        await look(client, staying, sale.event.id, places[1])
        scraped = (await client.get("/metrics")).text
        label = f'{{event="{sale.event.id}"}}'
        assert f"ticketflow_waiting_room_admitted_total{label} 1.0" in scraped
        assert f"ticketflow_waiting_room_abandoned_total{label} 1.0" in scraped
        assert f"ticketflow_waiting_room_queue_length{label} 0.0" in scraped
        assert f"ticketflow_waiting_room_wait_seconds_count{label} 1.0" in scraped


async def test_a_rooms_redis_keys_are_forgotten_a_day_after_its_event(
    redis_stack: Stack, clock: ManualClock
) -> None:
    from redis.asyncio import Redis

    async with running_app(redis_stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, admit_per_minute=60)
        buyer = await account(app.bus)
        place = await admitted(client, clock, sale, buyer)
        await book_admitted(client, buyer, sale, place["admission_token"])
        copy = await app.bus.deps.catalog.get(sale.event.id)
        assert copy is not None
        await app.bus.deps.rooms.spend(copy[0], buyer.actor.user_id)  # as a payment does
        assert redis_stack.redis_url is not None
        redis = Redis.from_url(redis_stack.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(f"ticketflow:room:{{{sale.event.id}}}:*")]
            # marker opening places users seen seq allowance spent; the line is empty
            assert len(keys) == 8
            event_ends = (sale.event.ends_at - clock.now()).total_seconds() + 86_400
            for key in keys:
                assert abs(await redis.ttl(key) - event_ends) < 60, key
        finally:
            await redis.aclose()


async def test_auto_admits_a_share_of_the_holds_per_second_the_engine_serves(
    stack: Stack, clock: ManualClock
) -> None:
    from ticketflow.domain import commands as cmd
    from ticketflow.domain.waiting_room import WaitingRoom

    from ..builders import hold

    settings = stack.settings(waiting_room_auto_floor_per_minute=1)
    async with running_app(settings, clock) as app:
        sale = await room_sale(app.bus, clock, sale_in=0, enabled=False)
        other = await room_sale(app.bus, clock, sale_in=0, enabled=False)
        auto = WaitingRoom(admit_per_minute=None)
        rooms = app.bus.deps.rooms
        assert rooms.per_minute(sale.event.id, auto) == 1  # nothing served yet: the floor
        await hold(app.bus, await account(app.bus), sale.event.id, sale.line())  # a batch
        served = rooms.per_minute(sale.event.id, auto)  # 75% of 1 hold / its batch's seconds
        assert served > 1
        # An event with no holds of its own starts from the engine's rate, not from the floor.
        assert rooms.per_minute(other.event.id, auto) == served
        turned_on = {"waiting_room": {"admit_per_minute": "auto"}}
        await app.bus.handle(cmd.UpdateEvent(sale.organizer.actor, sale.event.id, turned_on))
        buyer = await account(app.bus)
        place = await join(app.client(), buyer, sale.event.id)
        assert place["eta_seconds"] == math.ceil(60 / served)  # first in line, at that rate


async def test_looks_at_a_waiting_place_are_answered_from_this_process_between_refreshes(
    redis_stack: Stack, clock: ManualClock
) -> None:
    from redis.asyncio import Redis

    assert redis_stack.redis_url is not None
    redis = Redis.from_url(redis_stack.redis_url)

    async def line_steps() -> int:
        stats = await redis.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))

    try:
        async with running_app(redis_stack.settings(), clock) as app:
            client = app.client()
            sale = await room_sale(app.bus, clock, sale_in=0, admit_per_minute=60)  # one a second
            first, second = await account(app.bus), await account(app.bus)
            await join(client, first, sale.event.id)
            place = await join(client, second, sale.event.id)
            assert place["position"] == 2
            steps = await line_steps()
            for _ in range(20):  # the same moment: the line is not asked again
                assert (await look(client, second, sale.event.id, place))["position"] == 2
            assert await line_steps() == steps
            clock.advance(1)  # one admission: one refresh moves the line, and the count with it
            assert (await look(client, second, sale.event.id, place))["position"] == 1
            assert await line_steps() == steps + 1
    finally:
        await redis.aclose()


async def test_a_heartbeat_heard_by_one_instance_keeps_the_place_on_another(
    redis_stack: Stack, clock: ManualClock
) -> None:
    """The heartbeats a process answered from its copy reach the line (its timer's write)
    before another instance's turn-taking could take the place for abandoned."""
    settings = redis_stack.settings()
    async with (
        running_app(settings, clock) as one,
        running_app(settings, clock, wipe_first=False) as two,
    ):
        sale = await room_sale(one.bus, clock, sale_in=60, admit_per_minute=60)
        buyer = await account(one.bus)
        place = await join(one.client(), buyer, sale.event.id)
        await look(two.client(), buyer, sale.event.id, place)  # the second instance learns it
        clock.advance(50)
        await look(two.client(), buyer, sale.event.id, place)  # answered from its copy
        await two.bus.deps.rooms.lines.write_heartbeats(sale.event.id)  # as its timer does
        clock.advance(60.5)  # the opening is past; the place was last seen 60.5 s ago
        seen = await look(one.client(), buyer, sale.event.id, place)
        assert seen["state"] == "admitted", seen


async def test_a_look_refused_by_a_busy_process_still_keeps_its_place(
    stack: Stack, clock: ManualClock
) -> None:
    """A process too busy to answer a look (503, api/load_shedding.py) hears its heartbeat all
    the same: the buyer was there asking, and the place is admitted at its turn, not skipped."""
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock, sale_in=60, admit_per_minute=60)
        buyer = await account(app.bus)
        place = await join(app.client(), buyer, sale.event.id)
        clock.advance(50)
        refused = {"app": app.app}  # what the load-shedding middleware hands on of a request
        heard_by_the_room(refused, sale.event.id, UUID(place["ticket_id"]))
        heard_by_the_room(refused, sale.event.id, uuid4())  # made up: the line keeps nothing
        heard_by_the_room(refused, uuid4(), UUID(place["ticket_id"]))  # no such room here
        await app.bus.deps.rooms.lines.write_heartbeats(sale.event.id)  # as its timer does
        clock.advance(60.5)  # the opening is past; the place was last answered 110.5 s ago
        seen = await look(app.client(), buyer, sale.event.id, place)
        assert seen["state"] == "admitted", seen


async def test_a_place_of_a_lost_line_is_unknown_to_the_line_opened_after_it(
    stack: Stack, clock: ManualClock
) -> None:
    """A process that knew the place from the lost line does not keep answering it."""
    from ticketflow.domain import commands as cmd

    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        sale = await room_sale(app.bus, clock, sale_in=0, admit_per_minute=60)
        first, waiting = await account(app.bus), await account(app.bus)
        await join(client, first, sale.event.id)
        place = await join(client, waiting, sale.event.id)
        clock.advance(1)
        assert (await look(client, waiting, sale.event.id, place))["position"] == 1
        if stack.redis_url:
            flush(stack.redis_url)
        else:
            states = app.bus.deps.rooms.states
            assert isinstance(states, LocalRoomStates)
            states.forget_all()
        configured = {"waiting_room": {**ROOM, "admit_per_minute": 60}}
        await app.bus.handle(cmd.UpdateEvent(sale.organizer.actor, sale.event.id, configured))
        clock.advance(1)
        lost = await client.get(
            f"{API}/events/{sale.event.id}/queue/{place['ticket_id']}", headers=waiting.headers
        )
        problem(lost, 404)
        rejoined = await join(client, waiting, sale.event.id)  # a new place in the new line
        assert rejoined["ticket_id"] != place["ticket_id"] and rejoined["position"] == 1


async def test_a_join_after_an_opening_moved_earlier_is_first_come_on_an_instance_behind(
    redis_stack: Stack, clock: ManualClock
) -> None:
    """The organizer opens the sale sooner through one instance; another, whose copy of the
    event still says later (kept an hour here), takes a join after the new opening: the line
    decides by the opening it keeps, so the joiner goes behind everyone, not into the shuffle
    (where it could have drawn a place ahead of the whole pre-queue)."""
    from ticketflow.domain import commands as cmd

    settings = redis_stack.settings()
    async with (
        running_app(settings, clock) as one,
        running_app(
            redis_stack.settings(catalog_snapshot_ttl_seconds=3600), clock, wipe_first=False
        ) as two,
    ):
        sale = await room_sale(one.bus, clock, sale_in=600)
        early = [await account(one.bus) for _ in range(20)]
        for buyer in early:  # the second instance copies the event as it is now
            await join(two.client(), buyer, sale.event.id)
        sooner = clock.now() + timedelta(seconds=10)
        await one.bus.handle(
            cmd.UpdateEvent(sale.organizer.actor, sale.event.id, {"sales_start": sooner})
        )
        clock.advance(10)  # the new opening instant: nobody admitted yet
        late = await account(one.bus)
        place = await join(two.client(), late, sale.event.id)
        kept = await two.bus.deps.rooms.states.visit(
            sale.event.id, UUID(place["ticket_id"]), clock.now(), None
        )
        assert kept.place is not None and not kept.place.pre_queue
        seen = await look(one.client(), late, sale.event.id, place)
        assert seen["position"] == len(early) + 1, seen
