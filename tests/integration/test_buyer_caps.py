"""Per-buyer caps (issue 16, part 1): an event's `max_tickets_per_buyer` over all its types and a
ticket type's `max_per_buyer`, counting the buyer's pending and paid tickets, enforced by the
transaction that holds, in the batched engine and the multi-line path, across processes."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import BuyerLimitReached
from ticketflow.domain.model import Booking, Role
from ticketflow.services.messagebus import MessageBus

from ..builders import (
    API,
    Account,
    EventOnSale,
    account,
    app_bus,
    book,
    event_body,
    event_on_sale,
    hold,
    problem,
    ticket_type_body,
)
from ..invariants import assert_invariants


def _capped(body: dict[str, Any], remaining: int) -> None:
    assert body["type"] == "urn:ticketflow:problem:buyer-limit-reached", body
    assert body["remaining"] == remaining
    assert body["errors"] == [{"field": "quantity", "message": body["detail"]}]


async def test_a_new_event_caps_each_buyer_at_10_unless_its_organizer_says_otherwise(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    organizer = await account(app_bus(client), Role.MANAGER)
    made = await client.post(
        f"{API}/events", json=event_body(clock.now()), headers=organizer.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["max_tickets_per_buyer"] == 10
    assert made.json()["refund_deadline"] is None
    event_id = made.json()["id"]
    uncapped = await client.patch(
        f"{API}/events/{event_id}", json={"max_tickets_per_buyer": None}, headers=organizer.headers
    )
    assert uncapped.status_code == 200 and uncapped.json()["max_tickets_per_buyer"] is None
    added = await client.post(
        f"{API}/events/{event_id}/ticket-types",
        json=ticket_type_body(max_per_buyer=4),
        headers=organizer.headers,
    )
    assert added.status_code == 201 and added.json()["max_per_buyer"] == 4
    cleared = await client.patch(
        f"{API}/ticket-types/{added.json()['id']}",
        json={"max_per_buyer": None},
        headers=organizer.headers,
    )
    assert cleared.status_code == 200 and cleared.json()["max_per_buyer"] is None
    shown = await client.get(f"{API}/events/{event_id}", headers=organizer.headers)
    assert shown.json()["max_tickets_per_buyer"] is None
    assert shown.json()["ticket_types"][0]["max_per_buyer"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tickets_per_buyer", 0), ("max_tickets_per_buyer", "ten"), ("max_per_buyer", -1)],
)
async def test_a_cap_below_one_is_a_422_naming_it(
    client: httpx.AsyncClient, clock: ManualClock, field: str, value: object
) -> None:
    organizer = await account(app_bus(client), Role.MANAGER)
    if field == "max_per_buyer":
        sale = await event_on_sale(app_bus(client), organizer, publish=False)
        answer = await client.post(
            f"{API}/events/{sale.event.id}/ticket-types",
            json=ticket_type_body(**{field: value}),
            headers=organizer.headers,
        )
    else:
        answer = await client.post(
            f"{API}/events",
            json=event_body(clock.now(), **{field: value}),
            headers=organizer.headers,
        )
    assert [e["field"] for e in problem(answer, 422)["errors"]] == [field]


async def test_the_event_cap_counts_every_type_and_says_how_many_are_left(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(50, 50), max_tickets_per_buyer=5)
    event, (tier_0, tier_1) = sale.event.id, (tt.id for tt in sale.ticket_types)
    buyer, other = await account(bus), await account(bus)
    # multi-line
    assert (await book(client, buyer, event, (tier_0, 2), (tier_1, 1))).status_code == 201
    refused = await book(client, buyer, event, (tier_1, 3), key="too-many")
    body = problem(refused, 409)
    _capped(body, remaining=2)
    assert "at most 5 tickets of this event; you may hold 2 more" in body["detail"]
    # the key keeps its answer
    again = await book(client, buyer, event, (tier_1, 3), key="too-many")
    assert again.status_code == 409 and again.content == refused.content
    assert (await book(client, buyer, event, (tier_0, 2))).status_code == 201
    _capped(problem(await book(client, buyer, event, (tier_0, 1)), 409), remaining=0)
    assert (await book(client, other, event, (tier_0, 5))).status_code == 201  # caps are per buyer
    await assert_invariants(bus.engine)


async def test_a_ticket_type_cap_applies_to_its_own_type_only(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(50, 50), max_per_buyer=3)
    event, (tier_0, tier_1) = sale.event.id, (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    assert (await book(client, buyer, event, (tier_0, 2))).status_code == 201
    refused = problem(await book(client, buyer, event, (tier_0, 2)), 409)
    _capped(refused, remaining=1)
    assert "'Tier 0'" in refused["detail"]
    _capped(problem(await book(client, buyer, event, (tier_0, 2), (tier_1, 1)), 409), remaining=1)
    assert (await book(client, buyer, event, (tier_0, 1), (tier_1, 3))).status_code == 201


async def test_released_holds_stop_counting_and_paid_ones_keep_counting(
    bus: MessageBus, clock: ManualClock
) -> None:
    sale = await event_on_sale(bus, totals=(50,), max_tickets_per_buyer=4)
    (tier_0,) = (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    first = await hold(bus, buyer, sale.event.id, (tier_0, 4))
    with pytest.raises(BuyerLimitReached):
        await hold(bus, buyer, sale.event.id, (tier_0, 1))
    await bus.handle(cmd.CancelBooking(buyer.actor, first.id))
    await hold(bus, buyer, sale.event.id, (tier_0, 2))
    clock.advance(bus.deps.settings.hold_ttl_seconds)  # due, but not yet swept: still counted
    with pytest.raises(BuyerLimitReached) as refused:
        await hold(bus, buyer, sale.event.id, (tier_0, 3))
    assert refused.value.remaining == 2
    await bus.handle(cmd.ReleaseExpiredHolds(batch_size=10))
    await hold(bus, buyer, sale.event.id, (tier_0, 4))
    await assert_invariants(bus.engine)


async def _race(
    buses: list[MessageBus],
    buyer: Account,
    sale: EventOnSale,
    lines: list[tuple[tuple[UUID, int], ...]],
) -> list[Booking | BaseException]:
    attempts = [
        hold(buses[n % len(buses)], buyer, sale.event.id, *wanted) for n, wanted in enumerate(lines)
    ]
    return await asyncio.gather(*attempts, return_exceptions=True)


def _tickets(outcomes: list[Booking | BaseException]) -> int:
    unexpected = [
        o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, BuyerLimitReached)
    ]
    assert not unexpected, unexpected
    return sum(line.quantity for o in outcomes if isinstance(o, Booking) for line in o.lines)


@pytest.mark.parametrize("shape", ["one line each (batched)", "two lines each", "mixed"])
async def test_twenty_holds_at_once_by_one_buyer_never_pass_the_cap(
    bus: MessageBus, shape: str
) -> None:
    sale = await event_on_sale(bus, totals=(100, 100), max_tickets_per_buyer=10)
    tier_0, tier_1 = (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    lines: list[tuple[tuple[UUID, int], ...]] = {
        "one line each (batched)": [((tier_0, 1),)] * 20,
        "two lines each": [((tier_0, 1), (tier_1, 1))] * 20,
        "mixed": [((tier_0, 1),), ((tier_0, 1), (tier_1, 2)), ((tier_1, 3),), ((tier_1, 1),)] * 5,
    }[shape]
    outcomes = await _race([bus], buyer, sale, lines)
    held = _tickets(outcomes)
    assert 10 - max(sum(q for _, q in wanted) for wanted in lines) < held <= 10
    if shape == "one line each (batched)":
        assert held == 10
    await assert_invariants(bus.engine)


async def test_two_processes_share_one_buyers_cap(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    first, second = two_processes
    sale = await event_on_sale(first, totals=(100,), max_tickets_per_buyer=10, max_per_buyer=7)
    (tier_0,) = (tt.id for tt in sale.ticket_types)
    buyer = await account(first)
    outcomes = await _race([first, second], buyer, sale, [((tier_0, 1),)] * 20)
    assert _tickets(outcomes) == 7  # the type's cap binds first
    await assert_invariants(first.engine)
