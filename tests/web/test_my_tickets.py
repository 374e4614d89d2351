"""My tickets: the Refund button only while the buyer's own refund is allowed (the domain's
rule, domain/refund_policy.py), and why not once it is closed; Cancel only for pending holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.web.formatting import when

from ..builders import PASSWORD, Account, account, app_bus, event_on_sale, hold
from ..integration.paid_bookings import paid_booking, paying_client, ticket_codes
from .conftest import LOCAL, form_post


@pytest.fixture
async def shop(
    pg_settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The `browser` of conftest, on an app that pays through the in-process sandbox."""
    async with paying_client(pg_settings, clock, tmp_path / "ledger.db") as client:
        client.base_url = httpx.URL(LOCAL)
        yield client


async def _signed_in(shop: httpx.AsyncClient, buyer: Account) -> None:
    answer = await form_post(shop, "/sign-in", "/sign-in", email=buyer.email, password=PASSWORD)
    assert answer.status_code == 303, answer.text


def _refund_form(booking_id: object) -> str:
    return f'action="/my/bookings/{booking_id}/refund"'


async def test_refund_is_offered_until_the_deadline_then_the_page_says_when_it_closed(
    shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(shop)
    deadline = clock.now() + timedelta(days=3)
    sale = await event_on_sale(bus, refund_deadline=deadline)
    buyer = await account(bus)
    booking_id = await paid_booking(bus, buyer, sale, 1)
    await _signed_in(shop, buyer)
    page = (await shop.get("/my/bookings")).text
    assert _refund_form(booking_id) in page
    assert "Refunds closed" not in page

    clock.advance(timedelta(days=3).total_seconds())  # the session's tokens outlived too
    await _signed_in(shop, buyer)
    page = (await shop.get("/my/bookings")).text
    assert _refund_form(booking_id) not in page
    assert f'Refunds closed on <time datetime="{deadline.isoformat()}">{when(deadline)}' in page


async def test_a_checked_in_ticket_or_the_start_of_the_event_closes_refunds(
    shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(shop)
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    admitted = await paid_booking(bus, buyer, sale, 1)
    not_yet = await paid_booking(bus, buyer, sale, 1)
    (code,) = await ticket_codes(bus, admitted)
    await bus.handle(cmd.CheckInTicket(sale.organizer.actor, sale.event.id, code))
    await _signed_in(shop, buyer)
    page = (await shop.get("/my/bookings")).text
    assert _refund_form(admitted) not in page
    assert "No refund: a ticket was already checked in." in page
    assert _refund_form(not_yet) in page

    clock.advance((sale.event.starts_at - clock.now()).total_seconds())
    await _signed_in(shop, buyer)
    page = (await shop.get("/my/bookings")).text
    assert _refund_form(not_yet) not in page
    assert "Refunds closed when the event started" in page


async def test_cancel_is_offered_for_a_pending_hold_only(shop: httpx.AsyncClient) -> None:
    bus = app_bus(shop)
    sale = await event_on_sale(bus)
    buyer = await account(bus)
    paid = await paid_booking(bus, buyer, sale, 1)
    pending = await hold(bus, buyer, sale.event.id, sale.line())
    await _signed_in(shop, buyer)
    page = (await shop.get("/my/bookings")).text
    assert f'action="/my/bookings/{pending.id}/cancel"' in page
    assert f'action="/my/bookings/{paid}/cancel"' not in page
    assert _refund_form(pending.id) not in page
