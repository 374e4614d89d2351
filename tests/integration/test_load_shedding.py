"""Overload is answered, not queued: past the requests a process works on at once, the next ones
wait briefly, then get 503 + Retry-After as problem+json, with nothing done for them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.payment_gateway import Charge, Refund
from ticketflow.api.app import create_app
from ticketflow.config import Settings

from ..builders import API, account, app_bus, book, event_on_sale
from ..conftest import FAST_PASSWORDS, serving


class HeldCharges:
    """A provider whose charges answer only when the test lets them (a system we don't own)."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def charge(
        self, key: str, amount_minor: int, currency: str, payment_method: str, reference: str
    ) -> Charge:
        self.asked.set()
        await self.answer.wait()
        return Charge(f"ch_{key}", key, amount_minor, currency, True, None)

    async def find_charge(self, key: str) -> Charge | None:
        return None

    async def refund(self, key: str, charge_id: str, amount_minor: int) -> Refund:
        raise AssertionError("not refunded here")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def one_at_a_time(
    settings: Settings, clock: ManualClock
) -> AsyncIterator[tuple[httpx.AsyncClient, HeldCharges]]:
    provider = HeldCharges()
    settings = settings.model_copy(
        update={"shed_requests_in_progress": 1, "shed_wait_seconds": 0.05}
    )
    async with serving(create_app(settings, clock, FAST_PASSWORDS, provider)) as client:
        yield client, provider


async def test_a_request_past_capacity_is_503_with_retry_after_and_nothing_done(
    one_at_a_time: tuple[httpx.AsyncClient, HeldCharges],
) -> None:
    client, provider = one_at_a_time
    bus = app_bus(client)
    sale = await event_on_sale(bus, totals=(10,))
    buyer = await account(bus)
    one_ticket = (sale.ticket_types[0].id, 1)
    paid_id, kept_id = [
        (await book(client, buyer, sale.event.id, one_ticket)).json()["id"] for _ in range(2)
    ]
    pay_headers = {**buyer.headers, "Idempotency-Key": str(uuid.uuid4())}
    paying = asyncio.create_task(
        client.post(
            f"{API}/bookings/{paid_id}/payments",
            headers=pay_headers,
            json={"payment_method": "pm_card_visa"},
        )
    )
    await provider.asked.wait()  # the one place is taken by the payment, waiting on its charge

    refused = await client.get(f"{API}/bookings", headers=buyer.headers)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:ticketflow:problem:overloaded"
    cancel = f"{API}/bookings/{kept_id}/cancel"
    cancel_headers = {**buyer.headers, "Idempotency-Key": "shed-cancel"}
    assert (await client.post(cancel, headers=cancel_headers)).status_code == 503
    assert (await client.get("/health")).status_code == 200  # probes never wait in line

    provider.answer.set()
    paid = await paying
    assert paid.status_code == 201, paid.text
    kept = await client.get(f"{API}/bookings/{kept_id}", headers=buyer.headers)
    assert kept.json()["status"] == "pending"  # the refused cancel did nothing
    # ... and did not use its key: the same request now runs.
    cancelled = await client.post(cancel, headers=cancel_headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


async def test_no_free_database_connection_in_time_is_503_not_500(
    pg_settings: Settings, clock: ManualClock
) -> None:
    settings = pg_settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.05}
    )
    async with serving(create_app(settings, clock, FAST_PASSWORDS)) as client:
        bus = app_bus(client)
        buyer = await account(bus)
        sale = await event_on_sale(bus, totals=(10,))
        one_ticket = (sale.ticket_types[0].id, 1)
        async with bus.engine.connect():  # the pool's one connection, taken
            busy = await client.get(f"{API}/bookings", headers=buyer.headers)
            # The booking hot path runs outside the routes' error handlers: the same answer.
            hot = await book(client, buyer, sale.event.id, one_ticket)
        for answer in (busy, hot):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["type"] == "urn:ticketflow:problem:overloaded"
        assert (await client.get(f"{API}/bookings", headers=buyer.headers)).status_code == 200
        held = await book(client, buyer, sale.event.id, one_ticket)
        assert held.status_code == 201, held.text
