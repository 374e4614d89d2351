"""Organizer isolation across two organizers' shops: a manager sees and changes only their own
events, ticket types and the bookings on them; a buyer only their own bookings; an admin all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role

from ..builders import API, Account, EventOnSale, account, app_bus, event_on_sale, problem


@dataclass(frozen=True)
class Shops:
    organizer_a: Account
    organizer_b: Account
    buyer_1: Account  # booked on A's event
    buyer_2: Account  # booked on B's event
    admin: Account
    a_sale: EventOnSale
    a_draft: EventOnSale
    b_sale: EventOnSale
    b_draft: EventOnSale
    booking_1: UUID
    booking_2: UUID


@pytest.fixture
async def shops(client: httpx.AsyncClient) -> Shops:
    bus = app_bus(client)
    a, b = await account(bus, Role.MANAGER), await account(bus, Role.MANAGER)
    buyer_1, buyer_2, admin = await account(bus), await account(bus), await account(bus, Role.ADMIN)
    a_sale, b_sale = await event_on_sale(bus, a), await event_on_sale(bus, b)
    a_draft = await event_on_sale(bus, a, publish=False)
    b_draft = await event_on_sale(bus, b, publish=False)
    bookings = [
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tt.id, 1),)))
        for buyer, sale, tt in (
            (buyer_1, a_sale, a_sale.ticket_types[0]),
            (buyer_2, b_sale, b_sale.ticket_types[0]),
        )
    ]
    return Shops(
        a,
        b,
        buyer_1,
        buyer_2,
        admin,
        a_sale,
        a_draft,
        b_sale,
        b_draft,
        *(booking.id for booking in bookings),
    )


async def _call(
    client: httpx.AsyncClient, caller: Account, method: str, path: str, body: object = None
) -> httpx.Response:
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4())}
    return await client.request(method, f"{API}{path}", json=body, headers=headers)


def _ticket_type_body() -> dict[str, object]:
    return {"name": "Sneaky", "price_minor": 1, "currency": "EUR", "total": 5}


async def test_a_manager_lists_only_their_own_events(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    for organizer, own in (
        (shops.organizer_a, (shops.a_sale, shops.a_draft)),
        (shops.organizer_b, (shops.b_sale, shops.b_draft)),
    ):
        response = await _call(client, organizer, "GET", "/events?mine=true")
        listed = {item["id"] for item in response.json()["items"]}
        assert listed == {str(shop.event.id) for shop in own}


def _changes(shop: EventOnSale) -> list[tuple[str, str, object]]:
    event, ticket_type = shop.event.id, shop.ticket_types[0].id
    return [
        ("PATCH", f"/events/{event}", {"title": "Hijacked"}),
        ("POST", f"/events/{event}/ticket-types", _ticket_type_body()),
        ("PATCH", f"/ticket-types/{ticket_type}", {"total": 1}),
        ("POST", f"/events/{event}/publish", None),
        ("POST", f"/events/{event}/cancel", None),
    ]


async def test_another_managers_draft_does_not_exist_for_a_manager(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    draft = shops.b_draft
    problem(await _call(client, shops.organizer_a, "GET", f"/events/{draft.event.id}"), 404)
    for method, path, body in _changes(draft):
        problem(await _call(client, shops.organizer_a, method, path, body), 404)
    mine = await _call(client, shops.organizer_b, "GET", f"/events/{draft.event.id}")
    assert (mine.json()["title"], mine.json()["status"]) == (draft.event.title, "draft")
    assert [tt["total"] for tt in mine.json()["ticket_types"]] == [100]


async def test_a_manager_may_see_but_not_change_another_managers_published_event(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    sale = shops.b_sale
    assert (await _call(client, shops.organizer_a, "GET", f"/events/{sale.event.id}")).is_success
    for method, path, body in _changes(sale):
        if not path.endswith("/publish"):  # already published: that one is a state conflict
            problem(await _call(client, shops.organizer_a, method, path, body), 403)
    unchanged = await _call(client, shops.organizer_b, "GET", f"/events/{sale.event.id}")
    assert (unchanged.json()["title"], unchanged.json()["status"]) == (
        sale.event.title,
        "published",
    )
    assert len(unchanged.json()["ticket_types"]) == 1


def _booking_routes(booking: UUID) -> list[tuple[str, str, object]]:
    return [
        ("GET", f"/bookings/{booking}", None),
        ("GET", f"/bookings/{booking}/tickets", None),
        ("POST", f"/bookings/{booking}/payments", {"payment_method": "pm_card_visa"}),
        ("POST", f"/bookings/{booking}/refund", None),
        ("POST", f"/bookings/{booking}/cancel", None),
    ]


async def test_a_manager_sees_the_bookings_on_their_events_and_no_others(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    on_mine = await _call(client, shops.organizer_a, "GET", f"/bookings/{shops.booking_1}")
    assert on_mine.json()["user_id"] == str(shops.buyer_1.actor.user_id)
    for method, path, body in _booking_routes(shops.booking_2):
        problem(await _call(client, shops.organizer_a, method, path, body), 404)
    listed = await _call(client, shops.organizer_a, "GET", "/bookings")
    assert listed.json()["items"] == []  # "mine" means booked by me, not on my events
    still = await _call(client, shops.buyer_2, "GET", f"/bookings/{shops.booking_2}")
    assert still.json()["status"] == "pending"


async def test_a_buyer_sees_only_their_own_bookings(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    for method, path, body in _booking_routes(shops.booking_2):
        problem(await _call(client, shops.buyer_1, method, path, body), 404)
    listed = await _call(client, shops.buyer_1, "GET", "/bookings")
    assert [item["id"] for item in listed.json()["items"]] == [str(shops.booking_1)]
    problem(await _call(client, shops.buyer_1, "GET", "/admin/users"), 403)


async def test_an_admin_sees_and_changes_every_shop(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    admin = shops.admin
    assert (await _call(client, admin, "GET", f"/events/{shops.b_draft.event.id}")).is_success
    for booking in (shops.booking_1, shops.booking_2):
        assert (await _call(client, admin, "GET", f"/bookings/{booking}")).is_success
    renamed = await _call(
        client, admin, "PATCH", f"/events/{shops.b_sale.event.id}", {"title": "R"}
    )
    assert renamed.json()["title"] == "R"
    users = await _call(client, admin, "GET", "/admin/users?limit=50")
    assert len(users.json()["items"]) == 5
