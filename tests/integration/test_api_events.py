"""Events and ticket types over HTTP: organizers manage them, everyone browses what is on sale."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import (
    API,
    NOBODYS_ID,
    Account,
    Id,
    account,
    book,
    error_fields,
    event_body,
    event_on_sale,
    held,
    problem,
    ticket_type_body,
)
from ..invariants import assert_invariants


async def get_event(
    client: httpx.AsyncClient, event_id: Id, caller: Account | None = None
) -> httpx.Response:
    return await client.get(f"{API}/events/{event_id}", headers=caller.headers if caller else {})


async def available(client: httpx.AsyncClient, event_id: Id) -> dict[str, int]:
    """Live availability per ticket type id, as anyone browsing sees it."""
    response = await get_event(client, event_id)
    assert response.status_code == 200, response.text
    return {tt["id"]: tt["available"] for tt in response.json()["ticket_types"]}


# Creating events


async def test_manager_creates_a_draft_event(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    manager = await account(bus, Role.MANAGER)
    body = event_body(clock.now(), title="  Opening Night  ", sales_start=clock.now())
    response = await client.post(f"{API}/events", json=body, headers=manager.headers)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["status"] == "draft"
    assert event["title"] == "Opening Night"
    assert event["organizer_id"] == str(manager.actor.user_id)
    assert event["ticket_types"] == []
    assert event["sales_end"] is None
    assert (await get_event(client, event["id"], manager)).json() == event


async def test_user_cannot_create_an_event(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    buyer = await account(bus)
    response = await client.post(
        f"{API}/events", json=event_body(clock.now()), headers=buyer.headers
    )
    problem(response, 403)


async def test_anonymous_cannot_create_an_event(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    response = await client.post(f"{API}/events", json=event_body(clock.now()))
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


IN_30_DAYS = timedelta(days=30)  # when event_body's event starts


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda now: {"ends_at": now + IN_30_DAYS}, "ends_at"),
        (
            lambda now: {"sales_start": now + timedelta(days=2), "sales_end": now},
            "sales_end",
        ),
        (lambda now: {"sales_end": now + 2 * IN_30_DAYS}, "sales_end"),
        (lambda now: {"starts_at": (now + IN_30_DAYS).replace(tzinfo=None)}, "starts_at"),
        (lambda now: {"title": "  "}, "title"),
        (lambda now: {"capacity": 100}, "capacity"),
    ],
    ids=[
        "ends-as-it-starts",
        "sales-end-before-they-start",
        "sales-end-after-the-event",
        "naive-datetime",
        "blank-title",
        "unknown-field",
    ],
)
async def test_event_creation_refuses_bad_input_naming_the_field(
    client: httpx.AsyncClient,
    bus: MessageBus,
    clock: ManualClock,
    change: Callable[[datetime], dict[str, Any]],
    field: str,
) -> None:
    manager = await account(bus, Role.MANAGER)
    body = event_body(clock.now(), **change(clock.now()))
    response = await client.post(f"{API}/events", json=body, headers=manager.headers)
    assert error_fields(response) == {field}


# Browsing


async def test_event_list_shows_only_published_events(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    on_sale = await event_on_sale(bus)
    await event_on_sale(bus, publish=False)
    cancelled = await event_on_sale(bus)
    await client.post(
        f"{API}/events/{cancelled.event.id}/cancel", headers=cancelled.organizer.headers
    )
    response = await client.get(f"{API}/events")
    assert response.status_code == 200, response.text
    page = response.json()
    assert [event["id"] for event in page["items"]] == [str(on_sale.event.id)]
    assert page["items"][0]["status"] == "published"
    assert page["items"][0]["ticket_types"][0]["id"] == str(on_sale.ticket_types[0].id)
    assert page["next_cursor"] is None


async def test_event_list_pages_through_every_published_event_once_by_start_time(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    organizer = await account(bus, Role.MANAGER)
    expected = []
    for days in (9, 3, 3, 5, 3, 7, 1):  # ties on the start time are ordered by id
        starts_at = clock.now() + timedelta(days=days)
        sale = await event_on_sale(
            bus, organizer, starts_at=starts_at, ends_at=starts_at + timedelta(hours=2)
        )
        expected.append((starts_at, str(sale.event.id)))
    await event_on_sale(bus, organizer, publish=False)
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = await client.get(f"{API}/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += [event["id"] for event in page["items"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [event_id for _, event_id in sorted(expected)]
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 51}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "not-ours"}, "cursor")],
)
async def test_event_list_refuses_bad_paging_input(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    assert error_fields(await client.get(f"{API}/events", params=params)) == {field}


async def test_event_shows_ticket_types_with_live_availability(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(10, 4))
    cheap, dear = (str(tt.id) for tt in sale.ticket_types)
    response = await get_event(client, sale.event.id)
    assert response.status_code == 200, response.text
    event = response.json()
    assert [(tt["id"], tt["total"], tt["available"]) for tt in event["ticket_types"]] == [
        (cheap, 10, 10),
        (dear, 4, 4),
    ]
    await held(client, await account(bus), sale.event.id, (cheap, 3), (dear, 4))
    assert await available(client, sale.event.id) == {cheap: 7, dear: 0}


async def test_draft_is_invisible_except_to_its_organizer_and_admins(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    draft = await event_on_sale(bus, publish=False)
    for stranger in (None, await account(bus), await account(bus, Role.MANAGER)):
        problem(await get_event(client, draft.event.id, stranger), 404)
    for insider in (draft.organizer, await account(bus, Role.ADMIN)):
        response = await get_event(client, draft.event.id, insider)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "draft"


async def test_mine_lists_the_organizers_own_events_drafts_too(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    organizer = await account(bus, Role.MANAGER)
    draft = await event_on_sale(bus, organizer, publish=False)
    published = await event_on_sale(bus, organizer)
    await event_on_sale(bus)  # someone else's
    response = await client.get(f"{API}/events", params={"mine": "true"}, headers=organizer.headers)
    assert response.status_code == 200, response.text
    assert {(event["id"], event["status"]) for event in response.json()["items"]} == {
        (str(draft.event.id), "draft"),
        (str(published.event.id), "published"),
    }


async def test_mine_needs_an_organizer(client: httpx.AsyncClient, bus: MessageBus) -> None:
    problem(await client.get(f"{API}/events", params={"mine": "true"}), 401)
    buyer = await account(bus)
    response = await client.get(f"{API}/events", params={"mine": "true"}, headers=buyer.headers)
    problem(response, 403)


# Changing events


async def patch_event(
    client: httpx.AsyncClient, event_id: Id, caller: Account, **changes: Any
) -> httpx.Response:
    return await client.patch(f"{API}/events/{event_id}", json=changes, headers=caller.headers)


async def test_organizer_updates_their_event(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus)
    response = await patch_event(client, sale.event.id, sale.organizer, title="Encore", venue="B")
    assert response.status_code == 200, response.text
    assert (response.json()["title"], response.json()["venue"]) == ("Encore", "B")
    assert (await get_event(client, sale.event.id)).json()["title"] == "Encore"


async def test_another_manager_cannot_update_a_published_event(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    rival = await account(bus, Role.MANAGER)
    problem(await patch_event(client, sale.event.id, rival, title="Mine now"), 403)
    assert (await get_event(client, sale.event.id)).json()["title"] == sale.event.title


async def test_another_managers_draft_does_not_exist_for_them(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    draft = await event_on_sale(bus, publish=False)
    rival = await account(bus, Role.MANAGER)
    problem(await patch_event(client, draft.event.id, rival, title="Mine now"), 404)


async def test_admin_updates_any_event(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus)
    admin = await account(bus, Role.ADMIN)
    response = await patch_event(client, sale.event.id, admin, description="Moved indoors")
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "Moved indoors"


@pytest.mark.parametrize("field", ["title", "venue", "starts_at", "ends_at", "description"])
async def test_patch_refuses_null_for_a_required_field(
    client: httpx.AsyncClient, bus: MessageBus, field: str
) -> None:
    sale = await event_on_sale(bus)
    response = await patch_event(client, sale.event.id, sale.organizer, **{field: None})
    assert error_fields(response) == {field}


async def test_patch_may_clear_the_sales_window(
    client: httpx.AsyncClient, bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, sales_end=clock.now() + timedelta(days=1))
    response = await patch_event(client, sale.event.id, sale.organizer, sales_end=None)
    assert response.status_code == 200, response.text
    assert response.json()["sales_end"] is None


async def test_patch_keeps_the_schedule_valid(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus)
    earlier = (sale.event.starts_at - timedelta(hours=1)).isoformat()
    response = await patch_event(client, sale.event.id, sale.organizer, ends_at=earlier)
    assert error_fields(response) == {"ends_at"}


async def test_patch_refuses_unknown_fields(client: httpx.AsyncClient, bus: MessageBus) -> None:
    sale = await event_on_sale(bus)
    response = await patch_event(client, sale.event.id, sale.organizer, status="published")
    assert error_fields(response) == {"status"}


# Publishing and cancelling


async def test_publishing_puts_a_draft_on_sale_once(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    draft = await event_on_sale(bus, publish=False)
    url = f"{API}/events/{draft.event.id}/publish"
    response = await client.post(url, headers=draft.organizer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published"
    assert (await get_event(client, draft.event.id)).status_code == 200
    problem(await client.post(url, headers=draft.organizer.headers), 409)


async def test_cancelling_an_event_cancels_its_holds_and_returns_their_tickets(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(10, 5))
    cheap, dear = (str(tt.id) for tt in sale.ticket_types)
    buyer = await account(bus)
    first = await held(client, buyer, sale.event.id, (cheap, 3), (dear, 2))
    second = await held(client, buyer, sale.event.id, (cheap, 4))
    response = await client.post(
        f"{API}/events/{sale.event.id}/cancel", headers=sale.organizer.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert await available(client, sale.event.id) == {cheap: 10, dear: 5}
    for booking in (first, second):
        mine = await client.get(f"{API}/bookings/{booking['id']}", headers=buyer.headers)
        assert mine.json()["status"] == "cancelled"
    await assert_invariants(bus.engine)


async def test_a_cancelled_event_sells_nothing_and_cannot_be_cancelled_again(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    url = f"{API}/events/{sale.event.id}/cancel"
    assert (await client.post(url, headers=sale.organizer.headers)).status_code == 200
    problem(await client.post(url, headers=sale.organizer.headers), 409)
    buyer = await account(bus)
    response = await book(client, buyer, sale.event.id, (sale.ticket_types[0].id, 1))
    problem(response, 409)
    problem(await patch_event(client, sale.event.id, sale.organizer, title="Back on"), 409)


# Ticket types


async def add_ticket_type(
    client: httpx.AsyncClient, event_id: Id, caller: Account, **overrides: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/events/{event_id}/ticket-types",
        json=ticket_type_body(**overrides),
        headers=caller.headers,
    )


async def patch_ticket_type(
    client: httpx.AsyncClient, ticket_type_id: Id, caller: Account, **changes: Any
) -> httpx.Response:
    return await client.patch(
        f"{API}/ticket-types/{ticket_type_id}", json=changes, headers=caller.headers
    )


async def test_organizer_adds_a_ticket_type_with_its_currency_upper_cased(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=())
    response = await add_ticket_type(
        client, sale.event.id, sale.organizer, currency="chf", total=40, price_minor=0
    )
    assert response.status_code == 201, response.text
    added = response.json()
    assert added["currency"] == "CHF"
    assert (added["total"], added["available"], added["price_minor"]) == (40, 40, 0)
    assert added["event_id"] == str(sale.event.id)
    assert await available(client, sale.event.id) == {added["id"]: 40}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price_minor": -1}, "price_minor"),
        ({"total": -5}, "total"),
        ({"currency": "EURO"}, "currency"),
        ({"max_per_booking": 0}, "max_per_booking"),
        ({"colour": "gold"}, "colour"),
    ],
)
async def test_ticket_type_refuses_bad_input_naming_the_field(
    client: httpx.AsyncClient, bus: MessageBus, change: dict[str, Any], field: str
) -> None:
    sale = await event_on_sale(bus, totals=())
    response = await add_ticket_type(client, sale.event.id, sale.organizer, **change)
    assert error_fields(response) == {field}


async def test_ticket_types_of_a_cancelled_event_cannot_change(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    await client.post(f"{API}/events/{sale.event.id}/cancel", headers=sale.organizer.headers)
    problem(await add_ticket_type(client, sale.event.id, sale.organizer), 409)
    problem(await patch_ticket_type(client, sale.ticket_types[0].id, sale.organizer, total=5), 409)


async def test_changing_a_total_moves_available_by_the_delta(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(10,))
    tier = str(sale.ticket_types[0].id)
    await held(client, await account(bus), sale.event.id, (tier, 3))
    for total, left in ((15, 12), (5, 2), (3, 0)):
        response = await patch_ticket_type(client, tier, sale.organizer, total=total)
        assert response.status_code == 200, response.text
        assert (response.json()["total"], response.json()["available"]) == (total, left)
        assert await available(client, sale.event.id) == {tier: left}
    await assert_invariants(bus.engine)


async def test_total_cannot_drop_below_the_tickets_already_held(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, totals=(10,))
    tier = str(sale.ticket_types[0].id)
    await held(client, await account(bus), sale.event.id, (tier, 3))
    problem(await patch_ticket_type(client, tier, sale.organizer, total=2), 409)
    assert await available(client, sale.event.id) == {tier: 7}


async def test_ticket_type_patch_changes_price_and_refuses_nulls(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    tier = sale.ticket_types[0].id
    response = await patch_ticket_type(client, tier, sale.organizer, price_minor=999, name="Late")
    assert response.status_code == 200, response.text
    assert (response.json()["price_minor"], response.json()["name"]) == (999, "Late")
    assert error_fields(await patch_ticket_type(client, tier, sale.organizer, total=None)) == {
        "total"
    }


# Ids that name nothing


@pytest.mark.parametrize("missing", [NOBODYS_ID, "not-a-uuid", "42"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/events/{}", None),
        ("PATCH", "/events/{}", {"title": "Renamed"}),
        ("POST", "/events/{}/publish", None),
        ("POST", "/events/{}/cancel", None),
        ("POST", "/events/{}/ticket-types", ticket_type_body()),
        ("PATCH", "/ticket-types/{}", {"total": 5}),
    ],
)
async def test_unknown_or_malformed_ids_are_404(
    client: httpx.AsyncClient,
    bus: MessageBus,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    missing: str,
) -> None:
    admin = await account(bus, Role.ADMIN)
    response = await client.request(
        method, API + path.format(missing), json=body, headers=admin.headers
    )
    problem(response, 404)
