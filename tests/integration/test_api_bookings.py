"""Bookings over HTTP: holding tickets, refusals, listing and reading them, cancelling a hold."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.sweeper import sweep_once

from ..builders import (
    API,
    NOBODYS_ID,
    Id,
    account,
    book,
    booking_body,
    error_fields,
    event_on_sale,
    held,
    problem,
)
from ..invariants import assert_invariants


async def available(client: httpx.AsyncClient, event_id: Id) -> list[int]:
    """Live availability of the event's ticket types, cheapest first."""
    response = await client.get(f"{API}/events/{event_id}")
    assert response.status_code == 200, response.text
    return [tt["available"] for tt in response.json()["ticket_types"]]


# Holding tickets


async def test_booking_holds_tickets_for_the_hold_ttl(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, totals=(10, 10, 10))  # 10.00, 20.00 and 30.00 EUR
    first, second, third = (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    response = await book(client, buyer, sale.event.id, (third, 3), (first, 2), (second, 1))
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "pending"
    assert (booking["user_id"], booking["event_id"]) == (
        str(buyer.actor.user_id),
        str(sale.event.id),
    )
    assert datetime.fromisoformat(booking["created_at"]) == clock.now()
    assert datetime.fromisoformat(booking["hold_expires_at"]) == clock.now() + timedelta(
        seconds=600
    )
    assert (booking["currency"], booking["total_minor"]) == ("EUR", 3 * 3000 + 2 * 1000 + 2000)
    # Lines come back in ticket type id order (ids are time-ordered), as GET returns them.
    assert [
        (line["ticket_type_id"], line["quantity"], line["unit_price_minor"])
        for line in booking["lines"]
    ] == [(str(first), 2, 1000), (str(second), 1, 2000), (str(third), 3, 3000)]
    assert await available(client, sale.event.id) == [8, 9, 7]
    mine = await client.get(f"{API}/bookings/{booking['id']}", headers=buyer.headers)
    assert mine.json() == booking
    await assert_invariants(bus.engine)


async def test_sold_out_is_a_409_problem(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(2,))
    tier = sale.ticket_types[0].id
    buyer = await account(bus)
    await held(client, buyer, sale.event.id, (tier, 2))
    body = problem(await book(client, buyer, sale.event.id, (tier, 1)), 409)
    assert body["type"] == "urn:ticketflow:problem:not-enough-tickets"
    assert body["title"] == "Not enough tickets left"
    assert "Tier 0" in body["detail"]


async def test_asking_for_more_than_is_left_is_409_and_takes_nothing(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(5, 3))
    plenty, scarce = (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    problem(await book(client, buyer, sale.event.id, (plenty, 5), (scarce, 4)), 409)
    assert await available(client, sale.event.id) == [5, 3]
    await assert_invariants(bus.engine)


async def test_quantity_above_max_per_booking_is_422(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(50,), max_per_booking=4)
    buyer = await account(bus)
    response = await book(client, buyer, sale.event.id, (sale.ticket_types[0].id, 5))
    assert error_fields(response) == {"quantity"}
    assert (await book(client, buyer, sale.event.id, (sale.ticket_types[0].id, 4))).is_success


@pytest.mark.parametrize("quantity", [0, -1, 101])
async def test_quantity_out_of_range_is_422(
    client: httpx.AsyncClient, bus: MessageBus, quantity: int
) -> None:
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    response = await book(client, buyer, sale.event.id, (sale.ticket_types[0].id, quantity))
    assert error_fields(response) == {"lines.0.quantity"}


async def test_naming_a_ticket_type_twice_is_422(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    tier = sale.ticket_types[0].id
    response = await book(client, await account(bus), sale.event.id, (tier, 1), (tier, 2))
    assert error_fields(response) == {"lines"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (booking_body(uuid.uuid4()), "lines"),  # no lines at all
        (booking_body("not-a-uuid", (uuid.uuid4(), 1)), "event_id"),
        (booking_body(uuid.uuid4(), ("not-a-uuid", 1)), "lines.0.ticket_type_id"),
        ({"event_id": str(uuid.uuid4())}, "lines"),
        (booking_body(uuid.uuid4(), (uuid.uuid4(), 1)) | {"coupon": "FREE"}, "coupon"),
    ],
    ids=["empty-lines", "bad-event-id", "bad-ticket-type-id", "missing-lines", "unknown-field"],
)
async def test_malformed_booking_body_is_422(
    client: httpx.AsyncClient, bus: MessageBus, body: dict[str, Any], field: str
) -> None:
    buyer = await account(bus)
    response = await client.post(f"{API}/bookings", json=body, headers=buyer.headers)
    assert error_fields(response) == {field}


async def test_ticket_type_of_another_event_is_404(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    here, elsewhere = await event_on_sale(bus), await event_on_sale(bus)
    buyer = await account(bus)
    response = await book(client, buyer, here.event.id, (elsewhere.ticket_types[0].id, 1))
    problem(response, 404)
    assert await available(client, elsewhere.event.id) == [100]


@pytest.mark.parametrize("which", ["draft", "unknown"])
async def test_booking_a_draft_or_unknown_event_is_404(
    client: httpx.AsyncClient, bus: MessageBus, which: str
) -> None:
    draft = await event_on_sale(bus, publish=False)
    event_id = draft.event.id if which == "draft" else uuid.uuid4()
    response = await book(client, await account(bus), event_id, (draft.ticket_types[0].id, 1))
    problem(response, 404)


async def test_booking_needs_a_token(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus)
    problem(await book(client, None, sale.event.id, (sale.ticket_types[0].id, 1)), 401)


async def test_sales_not_open_yet_is_409_until_they_open(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, sales_start=clock.now() + timedelta(minutes=10))
    tier = sale.ticket_types[0].id
    buyer = await account(bus)
    body = problem(await book(client, buyer, sale.event.id, (tier, 1)), 409)
    assert body["type"] == "urn:ticketflow:problem:sales-closed"
    clock.advance(599)
    problem(await book(client, buyer, sale.event.id, (tier, 1)), 409)
    clock.advance(1)
    assert (await book(client, buyer, sale.event.id, (tier, 1))).status_code == 201


async def test_sales_closed_is_409(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, sales_end=clock.now() + timedelta(minutes=10))
    tier = sale.ticket_types[0].id
    buyer = await account(bus)
    clock.advance(599)
    assert (await book(client, buyer, sale.event.id, (tier, 1))).status_code == 201
    clock.advance(1)
    body = problem(await book(client, buyer, sale.event.id, (tier, 1)), 409)
    assert body["type"] == "urn:ticketflow:problem:sales-closed"


# Listing and reading


async def test_my_bookings_are_listed_newest_first_page_by_page(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    tier = sale.ticket_types[0].id
    buyer, other = await account(bus), await account(bus)
    made = []
    for quantity in (1, 2, 1, 3, 1):
        made.append((await held(client, buyer, sale.event.id, (tier, quantity)))["id"])
        await held(client, other, sale.event.id, (tier, 1))
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await client.get(f"{API}/bookings", params=params, headers=buyer.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert all(booking["user_id"] == str(buyer.actor.user_id) for booking in page["items"])
        seen += [booking["id"] for booking in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == made[::-1]


async def test_someone_without_bookings_sees_an_empty_list(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    await held(client, await account(bus), sale.event.id, (sale.ticket_types[0].id, 1))
    response = await client.get(f"{API}/bookings", headers=sale.organizer.headers)
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 51}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "bm9wZQ"}, "cursor")],
)
async def test_booking_list_refuses_bad_paging_input(
    client: httpx.AsyncClient, bus: MessageBus, params: dict[str, Any], field: str
) -> None:
    buyer = await account(bus)
    response = await client.get(f"{API}/bookings", params=params, headers=buyer.headers)
    assert error_fields(response) == {field}


async def test_listing_bookings_needs_a_token(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{API}/bookings"), 401)


async def test_booking_is_seen_by_its_buyer_its_organizer_and_admins_only(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    booking = await held(client, buyer, sale.event.id, (sale.ticket_types[0].id, 1))
    url = f"{API}/bookings/{booking['id']}"
    for insider in (buyer, sale.organizer, await account(bus, Role.ADMIN)):
        response = await client.get(url, headers=insider.headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == booking["id"]
    # For anyone else it does not exist: 404, not 403, so ids of others don't leak.
    for outsider in (await account(bus), await account(bus, Role.MANAGER)):
        problem(await client.get(url, headers=outsider.headers), 404)
    problem(await client.get(url), 401)


# Cancelling


async def test_buyer_cancels_a_hold_and_its_tickets_return(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(10, 10))
    buyer = await account(bus)
    lines = ((sale.ticket_types[0].id, 4), (sale.ticket_types[1].id, 2))
    booking = await held(client, buyer, sale.event.id, *lines)
    assert await available(client, sale.event.id) == [6, 8]
    url = f"{API}/bookings/{booking['id']}/cancel"
    response = await client.post(url, headers=buyer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert await available(client, sale.event.id) == [10, 10]
    body = problem(await client.post(url, headers=buyer.headers), 409)
    assert body["type"] == "urn:ticketflow:problem:invalid-state"
    assert await available(client, sale.event.id) == [10, 10]
    await assert_invariants(bus.engine)


async def test_someone_elses_booking_cannot_be_cancelled(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    booking = await held(client, buyer, sale.event.id, (sale.ticket_types[0].id, 3))
    url = f"{API}/bookings/{booking['id']}/cancel"
    for outsider in (await account(bus), await account(bus, Role.MANAGER)):
        problem(await client.post(url, headers=outsider.headers), 404)
    mine = await client.get(f"{API}/bookings/{booking['id']}", headers=buyer.headers)
    assert mine.json()["status"] == "pending"
    assert await available(client, sale.event.id) == [97]


async def test_an_expired_hold_cannot_be_cancelled(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    booking = await held(client, buyer, sale.event.id, (sale.ticket_types[0].id, 5))
    clock.advance(600)
    assert await sweep_once(bus) == 1
    url = f"{API}/bookings/{booking['id']}"
    assert (await client.get(url, headers=buyer.headers)).json()["status"] == "expired"
    problem(await client.post(f"{url}/cancel", headers=buyer.headers), 409)
    assert await available(client, sale.event.id) == [5]
    await assert_invariants(bus.engine)


@pytest.mark.parametrize("missing", [NOBODYS_ID, "not-a-uuid", "42"])
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/bookings/{}"), ("POST", "/bookings/{}/cancel")]
)
async def test_unknown_or_malformed_booking_ids_are_404(
    client: httpx.AsyncClient, bus: MessageBus, method: str, path: str, missing: str
) -> None:
    admin = await account(bus, Role.ADMIN)
    response = await client.request(method, API + path.format(missing), headers=admin.headers)
    problem(response, 404)
