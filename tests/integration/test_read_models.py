"""Reads served from the read models: "my bookings" with ticket details, an event's sales summary;
and the projections' cost on the hot path (a batch of holds: a handful of statements)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import domain_events, rm_ticket_type_sales
from ticketflow.config import Settings
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.projection_rebuild import rebuild_read_models

from ..builders import (
    API,
    Account,
    account,
    app_bus,
    event_on_sale,
    held,
    hold,
    problem,
)
from ..invariants import assert_read_models_match_state
from .paid_bookings import paying_client


@pytest.fixture
async def shop(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, paying through the sandbox provider (in-process too)."""
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        yield client


async def _pay(client: httpx.AsyncClient, buyer: Account, booking_id: str) -> None:
    response = await client.post(
        f"{API}/bookings/{booking_id}/payments",
        json={"payment_method": "pm_card_visa"},
        headers={**buyer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text


async def test_my_bookings_show_event_title_ticket_names_and_issued_tickets(
    shop: httpx.AsyncClient,
) -> None:
    bus = app_bus(shop)
    sale = await event_on_sale(bus, totals=(5, 5))
    first, second = (tt.id for tt in sale.ticket_types)
    buyer = await account(bus)
    booking_id = (await held(shop, buyer, sale.event.id, (first, 2), (second, 1)))["id"]
    await _pay(shop, buyer, booking_id)
    owner = sale.organizer.headers
    await shop.patch(f"{API}/ticket-types/{first}", json={"name": "Front row"}, headers=owner)
    await shop.patch(f"{API}/events/{sale.event.id}", json={"title": "Renamed"}, headers=owner)

    [listed] = (await shop.get(f"{API}/bookings", headers=buyer.headers)).json()["items"]
    detail = (await shop.get(f"{API}/bookings/{booking_id}", headers=buyer.headers)).json()
    assert {name: listed[name] for name in detail if name != "lines"} == {
        name: value for name, value in detail.items() if name != "lines"
    }
    assert listed["status"] == "confirmed" and listed["event_title"] == "Renamed"
    names = {line["ticket_type_id"]: line["ticket_type_name"] for line in listed["lines"]}
    assert names == {str(first): "Front row", str(second): "Tier 1"}
    unnamed = [{k: v for k, v in ln.items() if k != "ticket_type_name"} for ln in listed["lines"]]
    assert unnamed == detail["lines"]
    tickets = (await shop.get(f"{API}/bookings/{booking_id}/tickets", headers=buyer.headers)).json()
    assert sorted(listed["ticket_ids"]) == sorted(ticket["id"] for ticket in tickets["items"])
    assert len(listed["ticket_ids"]) == 3


async def test_sales_summary_counts_sold_held_and_revenue_net_of_refunds(
    shop: httpx.AsyncClient,
) -> None:
    bus = app_bus(shop)
    sale = await event_on_sale(bus, totals=(10,))  # Tier 0 at 1000
    tier = sale.ticket_types[0].id
    paid, pending, refunded = [await account(bus) for _ in range(3)]
    await _pay(shop, paid, (await held(shop, paid, sale.event.id, (tier, 2)))["id"])
    await held(shop, pending, sale.event.id, (tier, 3))
    refund_id = (await held(shop, refunded, sale.event.id, (tier, 1)))["id"]
    await _pay(shop, refunded, refund_id)
    response = await shop.post(
        f"{API}/bookings/{refund_id}/refund",
        headers={**refunded.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200, response.text

    url = f"{API}/events/{sale.event.id}/sales"
    summary = (await shop.get(url, headers=sale.organizer.headers)).json()
    assert (summary["title"], summary["status"]) == ("Flash Sale Night", "published")
    assert (summary["sold"], summary["held"]) == (2, 3)
    assert summary["revenue"] == [{"currency": "EUR", "revenue_minor": 2000}]
    [row] = summary["ticket_types"]
    assert row["ticket_type_id"] == str(tier)
    counts = ("total", "available", "held", "sold", "revenue_minor")
    assert [row[name] for name in counts] == [10, 5, 3, 2, 2000]
    admin = await account(bus, Role.ADMIN)
    assert (await shop.get(url, headers=admin.headers)).json() == summary
    for stranger in (await account(bus, Role.MANAGER), paid):
        problem(await shop.get(url, headers=stranger.headers), 404)


async def test_a_batch_of_holds_is_projected_with_a_handful_of_statements(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(100,))
    tier = sale.ticket_types[0].id
    buyers = [await account(bus) for _ in range(40)]
    projected: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "rm_" in statement:
            projected.append(statement)

    event.listen(bus.engine.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(*(hold(bus, buyer, sale.event.id, (tier, 1)) for buyer in buyers))
    finally:
        event.remove(bus.engine.sync_engine, "before_cursor_execute", count)
    holds = bus.deps.holds
    assert holds.holds_committed == 40
    assert holds.batches_committed < 40, "the holds were not batched: nothing to measure"
    # Per commit: the sales counters, the availability, one multi-row insert of the bookings.
    assert len(projected) <= 3 * holds.batches_committed, projected
    async with bus.engine.connect() as connection:
        held = await connection.scalar(
            select(rm_ticket_type_sales.c.held).where(rm_ticket_type_sales.c.ticket_type_id == tier)
        )
    assert held == 40


@pytest.mark.parametrize("batch_size", [1, 1000])
async def test_a_confirmation_stored_without_its_lines_is_priced_from_its_hold(
    bus: MessageBus, batch_size: int
) -> None:
    """Events stored before booking.confirmed carried its lines still rebuild the sales."""
    sale = await event_on_sale(bus, totals=(10,))
    tier = sale.ticket_types[0]
    booking_id, now = uuid.uuid4(), bus.deps.clock.now()
    line = {"ticket_type_id": str(tier.id), "quantity": 2, "unit_price_minor": tier.price_minor}
    held = {
        "user_id": str(sale.organizer.actor.user_id),
        "event_id": str(sale.event.id),
        "currency": "EUR",
        "total_minor": 2 * tier.price_minor,
        "hold_expires_at": now.isoformat(),
        "lines": [line],
    }
    confirmed = {"payment_id": str(uuid.uuid4()), "ticket_ids": [str(uuid.uuid4())] * 2}
    async with bus.engine.begin() as connection:
        await connection.execute(
            insert(domain_events),
            [
                {
                    "stream_type": "booking",
                    "stream_id": booking_id,
                    "version": version,
                    "type": type_,
                    "data": data,
                    "occurred_at": now,
                }
                for version, type_, data in (
                    (1, "booking.held", held),
                    (2, "booking.confirmed", confirmed),
                )
            ],
        )
    await rebuild_read_models(bus.engine, batch_size=batch_size)
    async with bus.engine.connect() as connection:
        row = (
            await connection.execute(
                select(rm_ticket_type_sales).where(rm_ticket_type_sales.c.ticket_type_id == tier.id)
            )
        ).one()
    assert (row.held, row.sold, row.revenue_minor) == (0, 2, 2 * tier.price_minor)


async def test_a_rebuild_while_bookings_commit_misses_none_and_counts_none_twice(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(200, 200))
    buyers = [await account(bus) for _ in range(8)]

    async def hold_a_round(round_: int) -> None:
        for buyer in buyers:
            await hold(bus, buyer, sale.event.id, (sale.ticket_types[round_ % 2].id, 1))

    await hold_a_round(0)
    await asyncio.gather(
        rebuild_read_models(bus.engine, batch_size=2),
        hold_a_round(1),
        hold_a_round(2),
        hold_a_round(3),
    )
    await assert_read_models_match_state(bus.engine)
