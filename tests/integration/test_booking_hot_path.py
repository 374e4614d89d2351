"""The booking hot path (api/booking_hot_path.py): holds answered as the route answers them; a
booking refused as sold out is answered before the idempotency claim, without a write; a key
used before still replays its first answer; limits and authentication still apply."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import idempotency_keys
from ticketflow.domain import commands as cmd
from ticketflow.services.messagebus import MessageBus

from ..builders import (
    API,
    account,
    app_bus,
    book,
    booking_body,
    event_on_sale,
    problem,
)
from .conftest import Stack, running_app


async def _keys(bus: MessageBus) -> int:
    async with bus.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(idempotency_keys))
    return int(count or 0)


def _sold_out(response: httpx.Response) -> None:
    body = problem(response, 409)
    assert body["type"] == "urn:ticketflow:problem:not-enough-tickets", body
    assert "sold out" in body["detail"]


async def test_a_hold_reads_back_exactly_as_answered(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    held = await book(client, buyer, sale.event.id, sale.line())
    assert held.status_code == 201
    assert held.headers["content-type"] == "application/json"
    read = await client.get(f"{API}/bookings/{held.json()['id']}", headers=buyer.headers)
    assert read.content == held.content  # same fields, same formats, byte for byte


async def test_sold_out_is_refused_without_storing_the_key(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(1,))
    winner, loser = await account(bus), await account(bus)
    assert (await book(client, winner, sale.event.id, sale.line(), key="win")).status_code == 201
    keys_after_sale = await _keys(bus)
    for attempt in range(5):  # the hold that took the last ticket marked the type sold out
        _sold_out(await book(client, loser, sale.event.id, sale.line(), key=f"loss-{attempt}"))
        _sold_out(await book(client, loser, sale.event.id, sale.line()))
    assert await _keys(bus) == keys_after_sale


async def test_a_used_key_replays_its_success_after_the_sell_out(
    client: httpx.AsyncClient,
) -> None:
    """The retry of a hold whose answer was lost must hear "201, here is your booking", not
    "sold out" — though the hold was the last ticket and the type is marked sold out now."""
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(1,))
    buyer, other = await account(bus), await account(bus)
    first = await book(client, buyer, sale.event.id, sale.line(), key="mine")
    assert first.status_code == 201
    _sold_out(
        await book(client, other, sale.event.id, sale.line(), key="theirs")
    )  # answered by the fast path
    again = await book(client, buyer, sale.event.id, sale.line(), key="mine")
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_key_refused_by_the_fast_path_books_once_tickets_return(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(1,))
    holder, waiting = await account(bus), await account(bus)
    held = await book(client, holder, sale.event.id, sale.line(), key="holder")
    assert held.status_code == 201
    _sold_out(
        await book(client, waiting, sale.event.id, sale.line(), key="patient")
    )  # the fast path: nothing kept
    cancelled = await client.post(
        f"{API}/bookings/{held.json()['id']}/cancel", headers=holder.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    retried = await book(client, waiting, sale.event.id, sale.line(), key="patient")
    assert retried.status_code == 201, retried.text


async def test_bad_requests_get_the_routes_answers_not_sold_out(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(1,), max_per_booking=2)
    buyer, other = await account(bus), await account(bus)
    assert (await book(client, buyer, sale.event.id, sale.line())).status_code == 201
    _sold_out(await book(client, other, sale.event.id, sale.line()))
    _sold_out(await book(client, other, sale.event.id, sale.line()))
    body = booking_body(sale.event.id, (sale.ticket_types[0].id, 1))
    anonymous = await client.post(f"{API}/bookings", json=body)
    problem(anonymous, 401)
    forged = {"Authorization": "Bearer not-a-token"}
    problem(await client.post(f"{API}/bookings", json=body, headers=forged), 401)
    too_many = await book(client, other, sale.event.id, sale.line(3))  # over max_per_booking
    assert problem(too_many, 422)["errors"][0]["field"] == "quantity"
    extra = {**body, "coupon": "FREE"}
    problem(await client.post(f"{API}/bookings", json=extra, headers=other.headers), 422)
    bad_key = {**other.headers, "Idempotency-Key": "spaces are not allowed"}
    problem(await client.post(f"{API}/bookings", json=body, headers=bad_key), 400)


async def test_the_fast_path_counts_against_the_booking_limit(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(rate_limits="on", rate_limit_bookings_per_user="4/minute")
    async with running_app(settings, clock) as app:
        sale = await event_on_sale(app.bus, totals=(1,))
        buyer, other = await account(app.bus), await account(app.bus)
        await app.bus.handle(
            cmd.HoldTickets(
                actor=buyer.actor,
                event_id=sale.event.id,
                lines=((sale.ticket_types[0].id, 1),),
            )
        )
        client = app.client()
        statuses = [
            (await book(client, other, sale.event.id, sale.line())).status_code for _ in range(6)
        ]
        assert statuses == [409, 409, 409, 409, 429, 429]


async def test_bookings_admitted_after_the_sell_out_are_refused_without_a_claim(
    stack: Stack, clock: ManualClock
) -> None:
    """A burst all arrives before anything is sold: the bookings beyond the admission window
    wait their turn, and when it comes they meet the sold-out mark instead of claiming a key."""
    async with running_app(stack.settings(booking_admission_window=1), clock) as app:
        sale = await event_on_sale(app.bus, totals=(1,))
        buyers = [await account(app.bus) for _ in range(8)]
        client = app.client()
        answers = await asyncio.gather(
            *(
                book(client, buyer, sale.event.id, sale.line(), key=f"burst-{n}")
                for n, buyer in enumerate(buyers)
            )
        )
        assert sorted(answer.status_code for answer in answers) == [201] + [409] * 7
        for answer in answers:
            if answer.status_code == 409:
                _sold_out(answer)
        assert await _keys(app.bus) == 1  # only the winner's key was ever claimed


async def test_a_hold_keeps_its_key_with_the_answer_it_gave(client: httpx.AsyncClient) -> None:
    """Claimed and answered in the hold's own transaction: kept before the buyer hears."""
    bus = app_bus(client)
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    held = await book(client, buyer, sale.event.id, sale.line(), key="kept")
    assert held.status_code == 201
    async with bus.engine.connect() as connection:
        row = (await connection.execute(select(idempotency_keys))).one()
    assert (row.key, row.state, row.response_status) == ("kept", "done", 201)
    assert row.response_body.encode() == held.content
    assert (row.resource_type, str(row.resource_id)) == ("booking", held.json()["id"])
    again = await book(client, buyer, sale.event.id, sale.line(), key="kept")
    assert (again.content, again.headers["idempotent-replayed"]) == (held.content, "true")


async def test_a_booking_refused_before_its_batch_is_kept_the_usual_way(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, max_per_booking=2)
    buyer = await account(bus)
    refused = await book(client, buyer, sale.event.id, sale.line(3), key="too-many")
    assert problem(refused, 422)["errors"][0]["field"] == "quantity"
    again = await book(client, buyer, sale.event.id, sale.line(3), key="too-many")
    assert (again.content, again.headers["idempotent-replayed"]) == (refused.content, "true")
    other = await book(
        client, buyer, sale.event.id, sale.line(), key="too-many"
    )  # same key, other body
    assert problem(other, 422)["type"] == "urn:ticketflow:problem:idempotency-key-reused"


async def test_a_rate_limited_booking_keeps_no_key(stack: Stack, clock: ManualClock) -> None:
    """429 says "not now": its key stays free for the retry, which must not hear 429 again."""
    settings = stack.settings(rate_limits="on", rate_limit_bookings_per_user="1/minute")
    async with running_app(settings, clock) as app:
        sale = await event_on_sale(app.bus)
        buyer = await account(app.bus)
        client = app.client()
        assert (
            await book(client, buyer, sale.event.id, sale.line(), key="first")
        ).status_code == 201
        problem(await book(client, buyer, sale.event.id, sale.line(), key="limited"), 429)
        assert await _keys(app.bus) == 1
