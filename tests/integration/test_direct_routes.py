"""The direct routes (api/direct_routes.py): a look at a waiting place, a join, the public
catalog reads, a booking's tickets and its payment, every answer, refusals included, byte for
byte what the ordinary routes (api/routes/waiting_room.py, events.py, payments.py) give."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID, uuid4

import httpx
from sqlalchemy import select
from starlette.routing import Match

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import idempotency_keys
from ticketflow.api.direct_routes import EVENT, EVENT_PAGE, EVENTS, JOIN, LOOK, PAY, TICKETS
from ticketflow.domain.model import Role

from ..builders import API, Account, account, event_on_sale, hold
from ..invariants import assert_invariants
from .conftest import RunningApp, Stack, running_app
from .paid_bookings import in_process_gateway, paid_booking, ticket_codes
from .test_waiting_room import join, room_sale

DIRECT = (LOOK, JOIN, EVENT, EVENTS, EVENT_PAGE, TICKETS, PAY)
# What differs between any two answers, whichever route gave them.
PER_REQUEST_HEADERS = {"x-request-id"}


def _hot_route_at(app: RunningApp, path: str, method: str = "GET") -> int | None:
    """Where the direct route is in the app's routes, if one matches `path`."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for index, route in enumerate(app.app.router.routes):
        hot = getattr(route, "path", None) in DIRECT
        if hot and route.matches(scope)[0] is Match.FULL:
            return index
    return None


@contextmanager
def _ordinary_only(app: RunningApp, path: str, method: str) -> Iterator[None]:
    """The direct route for `path` taken out meanwhile: its ordinary route answers."""
    at = _hot_route_at(app, path.split("?")[0], method)
    routes = app.app.router.routes
    taken = routes.pop(at) if at is not None else None
    try:
        yield
    finally:
        if taken is not None:
            routes.insert(at or 0, taken)


async def _both(
    app: RunningApp,
    path: str,
    headers: dict[str, str],
    method: str = "GET",
    body: bytes = b"",
    keyed: bool = False,
) -> tuple[httpx.Response, httpx.Response]:
    """The hot path's answer, then the ordinary route's (the hot path's route taken out);
    `keyed`: each with an Idempotency-Key of its own (a repeat of one is answered from it)."""
    client = app.client()

    async def send() -> httpx.Response:
        key = {"Idempotency-Key": str(uuid4())} if keyed else {}
        return await client.request(method, path, headers={**headers, **key}, content=body)

    hot = await send()
    with _ordinary_only(app, path, method):
        ordinary = await send()
    return hot, ordinary


def _same_answer(hot: httpx.Response, ordinary: httpx.Response, status: int) -> None:
    """Status, body and every header alike (but those of each request's own)."""
    assert hot.status_code == ordinary.status_code == status, (hot.url, hot.text)
    assert hot.content == ordinary.content, (hot.url, hot.text, ordinary.text)
    assert _headers(hot) == _headers(ordinary), hot.url


def _headers(answer: httpx.Response) -> list[tuple[str, str]]:
    return [
        (name, value) for name, value in answer.headers.items() if name not in PER_REQUEST_HEADERS
    ]


async def test_every_look_is_answered_as_the_route_answers_it(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock, sale_in=30, admit_per_minute=60)
        first, second, stranger = [await account(app.bus) for _ in range(3)]
        places = [await join(app.client(), buyer, sale.event.id) for buyer in (first, second)]
        no_room = await event_on_sale(app.bus)
        queue = f"{API}/events/{sale.event.id}/queue"

        def of(place: dict[str, str]) -> str:
            return f"{queue}/{place['ticket_id']}"

        before_opening = [
            (of(places[0]), first.headers, 200),  # in the pre-queue: no position yet
            (of(places[1]), stranger.headers, 404),  # someone else's place
            (f"{queue}/{uuid4()}", first.headers, 404),
            (f"{API}/events/{no_room.event.id}/queue/{uuid4()}", first.headers, 409),
            (f"{API}/events/{uuid4()}/queue/{uuid4()}", first.headers, 404),
            (of(places[0]), {}, 401),  # no token: handed to the route
            (of(places[0]), {"Authorization": "Bearer a.b.c"}, 401),  # a bad one, likewise
            (f"{queue}/not-a-place", first.headers, 404),  # never matches the hot path
        ]
        clock.advance(31)  # open a second: one admitted (one a second), the other waits
        after_opening = [
            (of(places[0]), first.headers, 200),  # one admitted (its token), one waiting
            (of(places[1]), second.headers, 200),  # (its position): the shuffle says which
        ]
        for path, _, _ in before_opening[:5] + after_opening:
            assert _hot_route_at(app, path) is not None, path
        for path, headers, status in before_opening + after_opening:
            hot, ordinary = await _both(app, path, headers)
            assert hot.status_code == ordinary.status_code == status, (path, hot.text)
            assert hot.content == ordinary.content, (path, hot.text, ordinary.text)
            for header in ("content-type", "www-authenticate"):
                assert hot.headers.get(header) == ordinary.headers.get(header), (path, header)
        looked = [
            (await app.client().get(of(place), headers=buyer.headers)).json()
            for place, buyer in zip(places, (first, second), strict=True)
        ]
        states = {seen["state"]: seen for seen in looked}
        assert set(states) == {"admitted", "waiting"}, looked
        assert states["admitted"]["admission_token"] and states["waiting"]["position"] == 1
        assert [UUID(seen["ticket_id"]) for seen in looked] == [
            UUID(place["ticket_id"]) for place in places
        ]


async def test_every_join_is_answered_as_the_route_answers_it(
    stack: Stack, clock: ManualClock
) -> None:
    """Joining again gives the same place, so the route's answer to the second join is the hot
    path's to the first."""
    async with running_app(stack.settings(), clock) as app:
        sale = await room_sale(app.bus, clock, sale_in=30, admit_per_minute=60)
        early, late = await account(app.bus), await account(app.bus)
        no_room = await event_on_sale(app.bus)
        queue = f"{API}/events/{sale.event.id}/queue"
        before_opening = [
            (queue, early.headers, 200),  # in the pre-queue
            (f"{API}/events/{no_room.event.id}/queue", early.headers, 409),
            (f"{API}/events/{uuid4()}/queue", early.headers, 404),
            (queue, {}, 401),
            (queue, {"Authorization": "Bearer a.b.c"}, 401),
        ]
        for path, headers, status in before_opening:
            await _same_join(app, path, headers, status)
        clock.advance(31)  # a join after the opening: first come, with its position
        joined = await _same_join(app, queue, late.headers, 200)
        assert joined["position"] == 1 and joined["state"] == "waiting", joined


async def _same_join(
    app: RunningApp, path: str, headers: dict[str, str], status: int
) -> dict[str, object]:
    assert _hot_route_at(app, path, "POST") is not None, path
    hot, ordinary = await _both(app, path, headers, "POST")
    assert hot.status_code == ordinary.status_code == status, (path, hot.text)
    assert hot.content == ordinary.content, (path, hot.text, ordinary.text)
    for header in ("content-type", "www-authenticate"):
        assert hot.headers.get(header) == ordinary.headers.get(header), (path, header)
    answer: dict[str, object] = hot.json()
    return answer


async def test_every_catalog_read_is_answered_as_the_route_answers_it(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        organizer = await account(app.bus, Role.MANAGER)
        sale = await event_on_sale(app.bus, organizer, totals=(100, 50))
        draft = await event_on_sale(app.bus, organizer, publish=False)
        stranger = await account(app.bus)
        event, events = f"{API}/events/{sale.event.id}", f"{API}/events"
        first = await app.client().get(event)
        listed = await app.client().get(events)
        cases = [
            (event, {}, 200),
            (event, stranger.headers, 200),
            (event, {"If-None-Match": first.headers["etag"]}, 304),
            (event, {"If-None-Match": '"stale"'}, 200),
            (f"{API}/events/{draft.event.id}", organizer.headers, 200),  # private, its own
            (f"{API}/events/{draft.event.id}", stranger.headers, 404),
            (f"{API}/events/{uuid4()}", {}, 404),
            (event, {"Authorization": "Bearer a.b.c"}, 401),
            (events, {}, 200),
            (events, {"If-None-Match": listed.headers["etag"]}, 304),
            (f"{events}?limit=1", {}, 200),  # handed to the route, which reads the query
            (f"{events}?mine=true", organizer.headers, 200),
            (f"{events}?limit=0", {}, 422),
            (events, {"Authorization": "Bearer a.b.c"}, 401),
        ]
        for path, headers, status in cases:
            assert _hot_route_at(app, path.split("?")[0]) is not None, path
            hot, ordinary = await _both(app, path, headers)
            assert hot.status_code == ordinary.status_code == status, (path, hot.text)
            assert hot.content == ordinary.content, (path, hot.text, ordinary.text)
            for header in ("content-type", "etag", "cache-control", "x-cache", "www-authenticate"):
                assert hot.headers.get(header) == ordinary.headers.get(header), (path, header)
        head = await app.client().head(event)  # the routes answer GET only
        assert head.status_code == 405, head.text


async def test_the_event_page_is_answered_as_its_route_answers_it(
    stack: Stack, clock: ManualClock
) -> None:
    """Refusals go to the page's own route, which renders its error page."""
    async with running_app(stack.settings(), clock) as app:
        organizer = await account(app.bus, Role.MANAGER)
        sale = await event_on_sale(app.bus, organizer)
        draft = await event_on_sale(app.bus, organizer, publish=False)
        cases = [
            (f"/events/{sale.event.id}", 200),
            (f"/events/{draft.event.id}", 404),
            (f"/events/{uuid4()}", 404),
        ]
        for path, status in cases:
            assert _hot_route_at(app, path) is not None, path
            hot, ordinary = await _both(app, path, {})
            assert hot.status_code == ordinary.status_code == status, (path, hot.text[:200])
            assert hot.content == ordinary.content, path
            for header in ("content-type", "etag", "cache-control", "x-cache"):
                assert hot.headers.get(header) == ordinary.headers.get(header), (path, header)


async def test_every_tickets_read_is_answered_as_the_route_answers_it(
    stack: Stack, clock: ManualClock, tmp_path: Path
) -> None:
    settings = stack.settings()
    async with (
        in_process_gateway(settings, tmp_path / "ledger.db") as gateway,
        running_app(settings, clock, payment_gateway=gateway) as app,
    ):
        organizer = await account(app.bus, Role.MANAGER)
        sale = await event_on_sale(app.bus, organizer, totals=(10,))
        buyer, stranger = await account(app.bus), await account(app.bus)
        paid = await paid_booking(app.bus, buyer, sale, 3)
        unpaid = await hold(app.bus, buyer, sale.event.id, (sale.ticket_types[0].id, 1))
        tickets, unpaid_tickets = (
            f"{API}/bookings/{paid}/tickets",
            f"{API}/bookings/{unpaid.id}/tickets",
        )
        cases = [
            (tickets, buyer.headers, 200),
            (tickets, organizer.headers, 200),  # the event's organizer sees its bookings
            (unpaid_tickets, buyer.headers, 200),  # none issued yet
            (tickets, stranger.headers, 404),  # someone else's booking
            (f"{API}/bookings/{uuid4()}/tickets", buyer.headers, 404),
            (tickets, {}, 401),  # no token: handed to the route
            (tickets, {"Authorization": "Bearer a.b.c"}, 401),  # a bad one, likewise
        ]
        for path, headers, status in cases:
            assert _hot_route_at(app, path) is not None, path
            _same_answer(*await _both(app, path, headers), status)
        assert _hot_route_at(app, f"{API}/bookings/not-a-booking/tickets") is None
        issued = (await app.client().get(tickets, headers=buyer.headers)).json()["items"]
        assert sorted(ticket["code"] for ticket in issued) == sorted(
            await ticket_codes(app.bus, paid)
        )
        assert [ticket["id"] for ticket in issued] == sorted(ticket["id"] for ticket in issued)
        unpaid_read = await app.client().get(unpaid_tickets, headers=buyer.headers)
        assert unpaid_read.json() == {"items": []}


async def test_every_payment_is_answered_as_the_route_answers_it(
    stack: Stack, clock: ManualClock, tmp_path: Path
) -> None:
    """Each request with its own Idempotency-Key, so that each is run, not answered from the
    first; a payment's answer names its own payment, so two payments are compared but for their
    ids."""
    settings = stack.settings()
    async with (
        in_process_gateway(settings, tmp_path / "ledger.db") as gateway,
        running_app(settings, clock, payment_gateway=gateway) as app,
    ):
        sale = await event_on_sale(app.bus, totals=(20,))
        buyer, stranger = await account(app.bus), await account(app.bus)

        async def held() -> str:
            booking = await hold(app.bus, buyer, sale.event.id, (sale.ticket_types[0].id, 2))
            return f"{API}/bookings/{booking.id}/payments"

        as_buyer = {**buyer.headers, "Content-Type": "application/json"}
        visa, declined = (
            b'{"payment_method":"pm_card_visa"}',
            b'{"payment_method":"pm_card_declined"}',
        )
        first, second, repeated = await held(), await held(), await held()
        hot = await _pay(app, first, as_buyer, visa)
        with _ordinary_only(app, second, "POST"):
            ordinary = await _pay(app, second, as_buyer, visa)
        assert hot.status_code == ordinary.status_code == 201, (hot.text, ordinary.text)
        assert _with_ids_of(ordinary, hot.content) == ordinary.content, (hot.text, ordinary.text)
        assert _headers(hot) == _headers(ordinary)
        assert await _spent_key(app, buyer, hot) == UUID(hot.json()["id"])

        unpaid = await held()
        cases = [
            (first, as_buyer, visa, 409),  # paid already
            (unpaid, {**stranger.headers, "Content-Type": "application/json"}, visa, 404),
            (f"{API}/bookings/{uuid4()}/payments", as_buyer, visa, 404),
            (unpaid, {"Content-Type": "application/json"}, visa, 401),  # handed to the route
            (
                unpaid,
                {"Authorization": "Bearer a.b.c", "Content-Type": "application/json"},
                visa,
                401,
            ),
            (unpaid, as_buyer, b'{"payment_method":""}', 422),  # the route explains what is wrong
            (unpaid, as_buyer, b'{"payment_method":"pm_card_visa","tip":1}', 422),
            (unpaid, {**buyer.headers, "Content-Type": "text/plain"}, visa, 422),
            (unpaid, as_buyer, declined, 402),  # the hold stays: the route's card is declined too
        ]
        for path, headers, body, status in cases:
            assert _hot_route_at(app, path, "POST") is not None, path
            _same_answer(*await _both(app, path, headers, "POST", body, keyed=True), status)
        _same_answer(*await _both(app, unpaid, as_buyer, "POST", visa), 400)  # no key: refused

        key = {**as_buyer, "Idempotency-Key": str(uuid4())}
        paid = await app.client().post(repeated, headers=key, content=visa)
        assert paid.status_code == 201, paid.text
        again, again_ordinary = await _both(app, repeated, key, "POST", visa)
        _same_answer(again, again_ordinary, 201)
        assert again.content == paid.content and again.headers["Idempotent-Replayed"] == "true"
        await assert_invariants(app.bus.engine)


async def _pay(app: RunningApp, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    key = {"Idempotency-Key": str(uuid4())}
    return await app.client().post(path, headers={**headers, **key}, content=body)


def _with_ids_of(payment: httpx.Response, answer: bytes) -> bytes:
    """`answer`, another payment's, with this payment's ids in place of its own."""
    theirs, ours = payment.json(), json.loads(answer)
    for field in ("id", "booking_id", "provider_ref"):
        answer = answer.replace(ours[field].encode(), theirs[field].encode())
    return answer


async def _spent_key(app: RunningApp, buyer: Account, answer: httpx.Response) -> UUID | None:
    """What the payment's Idempotency-Key was spent on, as its commit marked it."""
    key = answer.request.headers["Idempotency-Key"]
    async with app.bus.engine.connect() as connection:
        spent: UUID | None = await connection.scalar(
            select(idempotency_keys.c.resource_id).where(
                idempotency_keys.c.user_id == buyer.actor.user_id, idempotency_keys.c.key == key
            )
        )
    return spent
