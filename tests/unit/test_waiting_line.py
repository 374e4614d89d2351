"""The load-shedding line: a bounded number inside, the rest wait in order for a bounded time."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from ticketflow.api.load_shedding import Line, LoadSheddingMiddleware, WaitingLine, line_of

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


async def test_who_comes_first_is_let_in_ahead_of_those_already_waiting() -> None:
    line = WaitingLine(capacity=1, patience=PATIENT)
    assert await line.enter()
    browsing = asyncio.create_task(line.enter())
    paying = asyncio.create_task(line.enter(first=True))
    await asyncio.sleep(0)  # both are in the line now, the browser first
    line.leave()
    assert await paying
    assert not browsing.done()
    line.leave()
    assert await browsing
    line.leave()
    assert line.inside == 0


async def test_a_narrowed_line_closes_the_places_given_up_past_its_new_capacity() -> None:
    line = WaitingLine(capacity=2, patience=PATIENT)
    assert await line.enter()
    assert await line.enter()
    waiting = asyncio.create_task(line.enter())
    await asyncio.sleep(0)
    line.capacity = 1
    line.leave()  # two inside, one allowed: this place closes instead of going on
    await asyncio.sleep(0)
    assert not waiting.done() and line.inside == 1
    line.leave()  # within the capacity again: handed to the one waiting
    assert await waiting
    assert line.inside == 1


EVENT = "0190c5d2-0000-7000-8000-000000000000"
PLACE = "0190c5d2-0000-7000-8000-000000000001"


def test_probes_streams_provider_callbacks_and_the_booking_hot_path_do_not_wait_in_line() -> None:
    def scope(method: str, path: str) -> dict[str, str]:
        return {"method": method, "path": path}

    assert line_of(scope("GET", "/health")) is None
    assert line_of(scope("GET", "/metrics")) is None
    assert line_of(scope("GET", f"{API}/events/{EVENT}/live")) is None
    assert line_of(scope("GET", f"{API}/events/{EVENT}/queue/{EVENT}/stream")) is None
    assert line_of(scope("POST", f"{API}/bookings")) is Line.HOLD  # never waits: see below
    assert line_of(scope("POST", f"{API}/payments/webhook")) is None
    assert line_of(scope("GET", f"{API}/bookings")) is Line.ORDINARY
    assert line_of(scope("POST", f"{API}/bookings/{EVENT}/payments")) is Line.CHECKOUT
    assert line_of(scope("GET", f"{API}/bookings/{EVENT}/tickets")) is Line.CHECKOUT
    assert line_of(scope("GET", f"{API}/bookings/{EVENT}")) is Line.ORDINARY
    assert line_of(scope("POST", f"{API}/bookings/{EVENT}/refund")) is Line.ORDINARY
    assert line_of(scope("GET", f"{API}/events")) is Line.BROWSE
    assert line_of(scope("GET", f"{API}/events/{EVENT}")) is Line.BROWSE
    assert line_of(scope("POST", f"{API}/events")) is Line.ORDINARY
    assert line_of(scope("POST", f"{API}/events/{EVENT}/queue")) is Line.JOIN
    assert line_of(scope("GET", f"{API}/events/{EVENT}/queue")) is Line.ORDINARY
    assert line_of(scope("GET", f"{API}/events/{EVENT}/queue/{EVENT}")) is Line.ROOM


class HeldRequests:
    """An app whose requests answer 200 only when the test lets them."""

    def __init__(self, expected: int) -> None:
        self.inside, self.expected = 0, expected
        self.all_inside, self.answer = asyncio.Event(), asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        if self.inside == self.expected:
            self.all_inside.set()
        await self.answer.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _status(
    app: Any,
    method: str,
    path: str,
    headers: dict[bytes, bytes] | None = None,
    sending: list[tuple[bytes, bytes]] | None = None,
) -> int:
    """The status `app` answers (its headers into `headers`); `sending`: the request's."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": sending or [],
        "query_string": b"",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if headers is not None:
        headers.update(dict(sent[0]["headers"]))
    return int(sent[0]["status"])


ADMITTED = [(b"ticketflow-admission", b"a token")]


async def test_looks_past_the_rooms_share_are_shed_while_admitted_buyers_hold() -> None:
    held = HeldRequests(expected=4)
    heard: list[tuple[UUID, UUID]] = []
    shedding = LoadSheddingMiddleware(
        held,
        capacity=8,
        patience=0.01,
        room_share=0.25,
        refused_look=lambda scope, event_id, ticket_id: heard.append((event_id, ticket_id)),
    )
    look = f"{API}/events/{EVENT}/queue/{PLACE}"
    others = [  # an admitted buyer's hold narrows the room's lines to their share: 2 places
        asyncio.create_task(_status(shedding, "POST", f"{API}/bookings", sending=ADMITTED)),
        asyncio.create_task(_status(shedding, "GET", f"{API}/events/{EVENT}")),
    ]
    looking = [asyncio.create_task(_status(shedding, "GET", look)) for _ in range(2)]
    await held.all_inside.wait()  # the booking, the ordinary read and the two looks
    # The room's two places are taken: refused at once (let in, it would wait for the answer).
    told: dict[bytes, bytes] = {}
    shed = await asyncio.wait_for(_status(shedding, "GET", look, told), timeout=PATIENT)
    assert shed == 503
    assert told[b"retry-after"] == b"5"  # a look refused needs no quick retry: it was heard
    assert held.inside == 4
    # Refused, yet its buyer was there: the room hears the heartbeat (load_shedding.py).
    assert heard == [(UUID(EVENT), UUID(PLACE))]
    not_a_place = f"{API}/events/{EVENT}/queue/nonsense"
    assert await asyncio.wait_for(_status(shedding, "GET", not_a_place), timeout=PATIENT) == 503
    assert len(heard) == 1
    held.answer.set()
    assert await asyncio.gather(*looking, *others) == [200] * 4


async def test_the_rooms_lines_are_as_wide_as_the_ordinary_one_while_nobody_admitted_holds() -> (
    None
):
    held = HeldRequests(expected=8)
    shedding = LoadSheddingMiddleware(
        held, capacity=4, patience=0.01, room_share=0.25, refused_look=lambda *_: None
    )
    look, join = f"{API}/events/{EVENT}/queue/{PLACE}", f"{API}/events/{EVENT}/queue"
    # Before a sale opens nobody is admitted: the pre-queue's joins and looks get every place.
    inside = [asyncio.create_task(_status(shedding, "GET", look)) for _ in range(4)]
    inside += [asyncio.create_task(_status(shedding, "POST", join)) for _ in range(4)]
    await held.all_inside.wait()
    assert await asyncio.wait_for(_status(shedding, "POST", join), timeout=PATIENT) == 503
    # An admitted buyer comes to hold: the lines narrow to one place, closing the ones freed.
    holding = asyncio.create_task(_status(shedding, "POST", f"{API}/bookings", sending=ADMITTED))
    await asyncio.sleep(0)
    assert held.inside == 9
    held.answer.set()
    assert await asyncio.gather(*inside, holding) == [200] * 9
    assert shedding.lines[Line.JOIN].inside == shedding.lines[Line.ROOM].inside == 0
    held.answer.clear()
    held.expected, held.all_inside = 10, asyncio.Event()
    joining = asyncio.create_task(_status(shedding, "POST", join))
    await held.all_inside.wait()  # the one place of the narrowed line
    assert await asyncio.wait_for(_status(shedding, "POST", join), timeout=PATIENT) == 503
    held.answer.set()
    assert await joining == 200


async def test_a_payment_waiting_behind_other_requests_is_let_in_first() -> None:
    entered: list[str] = []
    gate = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        if len(entered) == 1:
            await gate.wait()  # the one request inside holds the only place
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shedding = LoadSheddingMiddleware(
        app, capacity=1, patience=PATIENT, room_share=1.0, refused_look=lambda *_: None
    )
    inside = asyncio.create_task(_status(shedding, "GET", f"{API}/bookings"))
    await asyncio.sleep(0)
    other = asyncio.create_task(_status(shedding, "GET", f"{API}/bookings/{EVENT}"))
    pay = asyncio.create_task(_status(shedding, "POST", f"{API}/bookings/{PLACE}/payments"))
    await asyncio.sleep(0)  # both wait, the other request first
    # The catalog's reads have a line of their own: not kept behind either.
    assert await asyncio.wait_for(_status(shedding, "GET", f"{API}/events"), PATIENT) == 200
    gate.set()
    assert await asyncio.gather(inside, other, pay) == [200, 200, 200]
    assert entered == [
        f"{API}/bookings",
        f"{API}/events",
        f"{API}/bookings/{PLACE}/payments",
        f"{API}/bookings/{EVENT}",
    ]


async def test_a_new_hold_gives_way_while_a_buyer_waits_to_pay() -> None:
    entered: list[str] = []
    gate, first_inside = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        if len(entered) == 1:
            first_inside.set()
            await gate.wait()  # the one request inside holds the only place
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shedding = LoadSheddingMiddleware(
        app, capacity=1, patience=PATIENT, room_share=1.0, refused_look=lambda *_: None
    )
    hold, payment = f"{API}/bookings", f"{API}/bookings/{PLACE}/payments"
    inside = asyncio.create_task(_status(shedding, "GET", f"{API}/bookings"))
    await first_inside.wait()
    assert await _status(shedding, "POST", hold) == 200  # the line is full; nobody waits to pay
    paying = asyncio.create_task(_status(shedding, "POST", payment))
    await asyncio.sleep(0)  # the payment runs up to its wait for the one place
    assert shedding.lines[Line.CHECKOUT].first_waiting
    told: dict[bytes, bytes] = {}
    assert await _status(shedding, "POST", hold, told) == 503  # at once: nothing done for it
    assert told[b"retry-after"] == b"1"
    admitted = [(b"ticketflow-admission", b"a token")]  # paced by its waiting room already
    assert await _status(shedding, "POST", hold, sending=admitted) == 200
    gate.set()
    assert await asyncio.gather(inside, paying) == [200, 200]
    assert await _status(shedding, "POST", hold) == 200  # nobody waits to pay any more
    assert entered == [f"{API}/bookings", hold, hold, payment, hold]


async def test_joins_past_their_share_are_shed_while_admitted_buyers_hold() -> None:
    held = HeldRequests(expected=4)
    shedding = LoadSheddingMiddleware(
        held, capacity=8, patience=0.01, room_share=0.25, refused_look=lambda *_: None
    )
    join = f"{API}/events/{EVENT}/queue"
    holding = asyncio.create_task(_status(shedding, "POST", f"{API}/bookings", sending=ADMITTED))
    joining = [asyncio.create_task(_status(shedding, "POST", join)) for _ in range(2)]
    browsing = asyncio.create_task(_status(shedding, "GET", f"{API}/events/{EVENT}"))
    await held.all_inside.wait()  # the hold, the two joins the share allows, and the read
    told: dict[bytes, bytes] = {}
    assert await asyncio.wait_for(_status(shedding, "POST", join, told), timeout=PATIENT) == 503
    assert told[b"retry-after"] == b"1"  # nothing was done for it: ask again soon
    assert held.inside == 4
    held.answer.set()
    assert await asyncio.gather(holding, *joining, browsing) == [200] * 4
