"""Payments through the sandbox provider (in-process over HTTP semantics): charged once,
confirmed with tickets, declined or failed without losing the hold, refunded once."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import circuitbreaker
import httpx
import pytest
import stamina
from sqlalchemy import func, select, text, update

from ticketflow.adapters import idempotency_store as store
from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.adapters.ids import new_id
from ticketflow.adapters.payment_gateway import Charge, HttpPaymentGateway, charge_from
from ticketflow.adapters.tables import idempotency_keys, payments, tickets, webhook_receipts
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain.errors import Conflict
from ticketflow.domain.payment import Payment
from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.payment_provider.signing import sign
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.payments import settle_charge
from ticketflow.services.sweeper import reconcile_once, sweep_once
from ticketflow.services.unit_of_work import UnitOfWork

from ..builders import API, Account, EventOnSale, account, app_bus, event_on_sale, held
from ..conftest import FAST_PASSWORDS, serving
from ..invariants import assert_invariants, assert_payments_match_ledger
from ..polling import eventually
from ..provider_in_process import InProcessProvider


@pytest.fixture(autouse=True)
def retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_provider_app(ProviderSettings(ledger=tmp_path / "ledger.db"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://provider") as client:
            yield client


class Shop:
    """Our app wired to the in-process provider, plus the handles tests need."""

    def __init__(
        self, client: httpx.AsyncClient, provider: httpx.AsyncClient, gateway: HttpPaymentGateway
    ) -> None:
        self.client, self.provider, self.gateway = client, provider, gateway
        self.bus = app_bus(client)

    async def held_booking(
        self, sale: EventOnSale | None = None, quantity: int = 2
    ) -> tuple[Account, str, EventOnSale]:
        sale = sale or await event_on_sale(self.bus, totals=(10,))
        buyer = await account(self.bus)
        booking = await held(self.client, buyer, sale.event.id, (sale.ticket_types[0].id, quantity))
        return buyer, booking["id"], sale

    async def pay(
        self, buyer: Account, booking_id: str, key: str | None = None, method: str = "pm_card_visa"
    ) -> httpx.Response:
        headers = {**buyer.headers, "Idempotency-Key": key or str(uuid.uuid4())}
        return await self.client.post(
            f"{API}/bookings/{booking_id}/payments",
            headers=headers,
            json={"payment_method": method},
        )

    async def booking(self, buyer: Account, booking_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{API}/bookings/{booking_id}", headers=buyer.headers)
        body: dict[str, Any] = response.json()
        return body

    async def faults(self, **faults: Any) -> None:
        assert (await self.provider.put("/_sandbox/faults", json=faults)).status_code == 200

    async def charges(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.provider.get("/v1/charges")).json()["items"]
        return items

    async def check_invariants(self) -> None:
        await assert_invariants(self.bus.engine)
        await assert_payments_match_ledger(self.bus.engine, self.provider)


@pytest.fixture
async def shop(
    settings: Settings, clock: ManualClock, provider: httpx.AsyncClient
) -> AsyncIterator[Shop]:
    settings = settings.model_copy(update={"payment_breaker_failure_threshold": 2})
    gateway = HttpPaymentGateway(settings, InProcessProvider(provider))
    async with serving(create_app(settings, clock, FAST_PASSWORDS, gateway)) as client:
        yield Shop(client, provider, gateway)


async def test_payment_confirms_booking_and_issues_one_ticket_per_seat(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking(quantity=3)
    response = await shop.pay(buyer, booking_id)
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "succeeded"
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    issued = (
        await shop.client.get(f"{API}/bookings/{booking_id}/tickets", headers=buyer.headers)
    ).json()["items"]
    assert len(issued) == 3 and len({ticket["code"] for ticket in issued}) == 3
    [charge] = await shop.charges()
    assert (charge["idempotency_key"], charge["amount_minor"]) == (payment["id"], 3 * 1000)
    await shop.check_invariants()


async def test_payment_without_idempotency_key_is_400(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    response = await shop.client.post(
        f"{API}/bookings/{booking_id}/payments",
        headers=buyer.headers,
        json={"payment_method": "pm_card_visa"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("idempotency-key-required")
    assert await shop.charges() == []


async def test_retried_payment_replays_and_charges_once(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    first = await shop.pay(buyer, booking_id, key="pay-1")
    again = await shop.pay(buyer, booking_id, key="pay-1")
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    other_key = await shop.pay(buyer, booking_id, key="pay-2")
    assert other_key.status_code == 409
    assert len(await shop.charges()) == 1
    await shop.check_invariants()


async def test_declined_card_keeps_the_hold_and_a_new_attempt_can_pay(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    declined = await shop.pay(buyer, booking_id, method="pm_card_declined")
    assert declined.status_code == 402
    assert (await shop.booking(buyer, booking_id))["status"] == "pending"
    paid = await shop.pay(buyer, booking_id)
    assert paid.status_code == 201
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    await shop.check_invariants()


async def test_provider_failure_is_503_and_the_same_key_pays_later(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(failure_rate=1.0)
    failed = await shop.pay(buyer, booking_id, key="flaky")
    assert failed.status_code == 503 and int(failed.headers["Retry-After"]) >= 1
    assert (await shop.booking(buyer, booking_id))["status"] == "pending"
    await shop.faults()
    paid = await shop.pay(buyer, booking_id, key="flaky")
    assert paid.status_code == 201, paid.text
    assert len(await shop.charges()) == 1
    await shop.check_invariants()


async def test_lost_answer_is_settled_by_the_reconciler(shop: Shop, clock: ManualClock) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(lost_response_rate=1.0)
    assert (await shop.pay(buyer, booking_id)).status_code == 503
    await shop.faults()
    assert await reconcile_once(shop.bus) == 0  # too fresh: it may still be in flight
    clock.advance(shop.bus.deps.settings.reconcile_after_seconds)
    assert await reconcile_once(shop.bus) == 1
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    assert len(await shop.charges()) == 1
    await shop.check_invariants()


async def test_charge_landing_after_the_hold_expired_is_refunded(
    shop: Shop, clock: ManualClock
) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(lost_response_rate=1.0)
    assert (await shop.pay(buyer, booking_id)).status_code == 503
    await shop.faults()
    clock.advance(shop.bus.deps.settings.hold_ttl_seconds)
    assert await sweep_once(shop.bus) == 1
    assert await reconcile_once(shop.bus) == 1
    assert (await shop.booking(buyer, booking_id))["status"] == "expired"
    [charge] = await shop.charges()
    refunds = (await shop.provider.get("/v1/refunds", params={"charge_id": charge["id"]})).json()
    assert [refund["amount_minor"] for refund in refunds["items"]] == [charge["amount_minor"]]
    await shop.check_invariants()


async def test_cancelling_a_paid_booking_refunds_once_and_returns_tickets(shop: Shop) -> None:
    buyer, booking_id, sale = await shop.held_booking(quantity=2)
    assert (await shop.pay(buyer, booking_id)).status_code == 201
    cancelled = await shop.client.post(
        f"{API}/bookings/{booking_id}/cancel", headers={**buyer.headers, "Idempotency-Key": "c1"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "refunded"
    again = await shop.client.post(
        f"{API}/bookings/{booking_id}/refund", headers={**buyer.headers, "Idempotency-Key": "r2"}
    )
    assert again.status_code == 409
    assert len((await shop.provider.get("/v1/refunds")).json()["items"]) == 1
    event = (await shop.client.get(f"{API}/events/{sale.event.id}")).json()
    assert event["ticket_types"][0]["available"] == 10
    async with shop.bus.engine.connect() as connection:
        live = await connection.scalar(
            select(func.count()).select_from(tickets).where(tickets.c.voided_at.is_(None))
        )
    assert live == 0
    await shop.check_invariants()


async def test_refund_of_an_unpaid_booking_is_409(shop: Shop) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    response = await shop.client.post(
        f"{API}/bookings/{booking_id}/refund", headers={**buyer.headers, "Idempotency-Key": "r"}
    )
    assert response.status_code == 409


async def test_breaker_opens_fails_fast_and_closes_after_a_good_probe(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(down=True)
    for attempt in range(2):  # the threshold in this fixture
        assert (await shop.pay(buyer, booking_id, key=f"down-{attempt}")).status_code == 503
    assert shop.gateway.breaker.state == circuitbreaker.STATE_OPEN
    await shop.faults()  # the provider is back, but the breaker does not know yet
    fast = await shop.pay(buyer, booking_id, key="while-open")
    assert fast.status_code == 503 and "not calling" in fast.json()["detail"]
    later = time.monotonic() + shop.bus.deps.settings.payment_breaker_recovery_seconds + 1
    monkeypatch.setattr(circuitbreaker, "monotonic", lambda: later)
    assert shop.gateway.breaker.state == circuitbreaker.STATE_HALF_OPEN
    assert (await shop.pay(buyer, booking_id, key="probe")).status_code == 201
    assert shop.gateway.breaker.state == circuitbreaker.STATE_CLOSED
    await shop.check_invariants()


def _signed(body: dict[str, Any], secret: str, at: int) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"Provider-Signature": sign(secret, raw, at), "Content-Type": "application/json"}


async def _charged_but_unanswered(shop: Shop) -> tuple[Account, str, dict[str, Any]]:
    """A held booking whose charge the provider made but whose answer was lost: the buyer, the
    booking id and the provider's charge, for a callback to settle."""
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(lost_response_rate=1.0)
    assert (await shop.pay(buyer, booking_id)).status_code == 503
    [charge] = await shop.charges()
    return buyer, booking_id, charge


async def test_signed_webhook_settles_a_pending_payment_once(
    shop: Shop, clock: ManualClock
) -> None:
    buyer, booking_id, charge = await _charged_but_unanswered(shop)
    secret, now = shop.bus.deps.settings.payment_webhook_secret, int(clock.now().timestamp())
    event = {"id": "evt_1", "type": "charge.succeeded", "created": now, "data": charge}
    raw, headers = _signed(event, secret, now)
    webhook = f"{API}/payments/webhook"
    tampered = raw.replace(b"succeeded", b"declined")
    assert (await shop.client.post(webhook, content=tampered, headers=headers)).status_code == 400
    stale_raw, stale = _signed(event, secret, now - 3600)
    assert (await shop.client.post(webhook, content=stale_raw, headers=stale)).status_code == 400
    forged_raw, forged = _signed(event, "not-our-secret", now)
    assert (await shop.client.post(webhook, content=forged_raw, headers=forged)).status_code == 400
    assert (await shop.booking(buyer, booking_id))["status"] == "pending"
    assert (await shop.client.post(webhook, content=raw, headers=headers)).status_code == 200
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    replayed = await shop.client.post(webhook, content=raw, headers=headers)
    assert replayed.status_code == 400
    await shop.check_invariants()


async def test_a_callback_for_another_amount_or_currency_pays_nothing(
    shop: Shop, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    buyer, booking_id, charge = await _charged_but_unanswered(shop)
    secret, now = shop.bus.deps.settings.payment_webhook_secret, int(clock.now().timestamp())
    cheaper = {**charge, "amount_minor": 1}
    event = {"id": "evt_cheap", "type": "charge.succeeded", "created": now, "data": cheaper}
    raw, headers = _signed(event, secret, now)
    answer = await shop.client.post(f"{API}/payments/webhook", content=raw, headers=headers)
    assert answer.status_code == 200  # received and recorded: the provider need not retry
    assert (await shop.booking(buyer, booking_id))["status"] == "pending"
    payment = await shop.bus.deps.payments.find_charge(charge["idempotency_key"])
    assert payment is not None  # the provider did charge: a person must look at it
    async with shop.bus.engine.connect() as connection:
        status, reason = (
            await connection.execute(
                select(payments.c.status, payments.c.failure_reason).where(
                    payments.c.booking_id == uuid.UUID(booking_id)
                )
            )
        ).one()
    assert (status, reason) == ("failed", "amount_mismatch")
    assert any(
        record.levelname == "ERROR" and "not settled as paid" in record.getMessage()
        for record in caplog.records
    )


async def test_a_second_live_payment_of_a_booking_is_refused_and_the_transaction_goes_on(
    shop: Shop,
) -> None:
    """Two payments of one booking started at once (two keys): the database lets one be live
    (uq_payments_live_booking); the other is told so, and its transaction can still be used."""
    _, booking_id, _ = await shop.held_booking()
    bus, now = shop.bus, shop.bus.deps.clock.now()

    def payment() -> Payment:
        return Payment(new_id(), uuid.UUID(booking_id), 9000, "EUR", "pm_card_visa")

    first, second = payment(), payment()
    async with UnitOfWork(bus.engine, bus.deps.clock, EventMeta()) as uow:
        await uow.payments.add(first, now)
        await uow.commit()
    async with UnitOfWork(bus.engine, bus.deps.clock, EventMeta()) as uow:
        with pytest.raises(Conflict, match="already under way"):
            await uow.payments.add(second, now)
        found = await uow.payments.booking_with_live_payment(uuid.UUID(booking_id))
    assert found is not None and found[1] is not None and found[1].id == first.id


async def _settle(bus: MessageBus, payment_id: uuid.UUID, charge: Charge) -> UnitOfWork:
    """A unit of work with the charge applied, left open: the caller commits it."""
    uow = UnitOfWork(bus.engine, bus.deps.clock, EventMeta(actor_id=None, request_id=None))
    await uow.__aenter__()
    await settle_charge(uow, bus.deps, payment_id, charge)
    return uow


async def _waiting_for_a_lock(bus: MessageBus) -> bool:
    async with bus.engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def test_the_pay_answer_and_its_webhook_settling_at_once_both_succeed(
    shop: Shop,
) -> None:
    """The provider's webhook often lands while the pay request settles the same charge: the
    later one waits for the earlier and finds it settled (no 409 for a buyer who paid)."""
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(lost_response_rate=1.0)  # the charge lands; its answer does not
    assert (await shop.pay(buyer, booking_id)).status_code == 503
    [recorded] = await shop.charges()
    charge, payment_id = charge_from(recorded), uuid.UUID(recorded["idempotency_key"])
    first = await _settle(shop.bus, payment_id, charge)
    second = asyncio.create_task(_settle(shop.bus, payment_id, charge))
    if shop.bus.engine.dialect.name == "postgresql":  # SQLite: writers queue at BEGIN anyway
        await eventually(
            lambda: _waiting_for_a_lock(shop.bus), within=10.0, what="the second to wait"
        )
    await first.commit()
    await first.__aexit__(None, None, None)
    later = await second
    await later.commit()
    await later.__aexit__(None, None, None)
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    await shop.check_invariants()


async def test_a_callback_repeating_a_settled_charge_is_answered_without_a_write(
    shop: Shop, clock: ManualClock
) -> None:
    buyer, booking_id, _ = await shop.held_booking()
    assert (await shop.pay(buyer, booking_id)).status_code == 201
    [charge] = await shop.charges()
    secret, now = shop.bus.deps.settings.payment_webhook_secret, int(clock.now().timestamp())
    event = {"id": "evt_after", "type": "charge.succeeded", "created": now, "data": charge}
    raw, headers = _signed(event, secret, now)
    answer = await shop.client.post(f"{API}/payments/webhook", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    async with shop.bus.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(webhook_receipts)) == 0
    assert (await shop.booking(buyer, booking_id))["status"] == "confirmed"
    await shop.check_invariants()


async def test_retry_after_a_crash_mid_payment_finishes_it(shop: Shop, clock: ManualClock) -> None:
    """The first attempt committed its pending payment and died before answering (its claim's
    lease still running): the same key answers 'in flight', then, once the lease ran out,
    resumes that payment instead of repeating or refusing it."""
    buyer, booking_id, _ = await shop.held_booking()
    await shop.faults(down=True)
    assert (await shop.pay(buyer, booking_id, key="crashy")).status_code == 503
    async with shop.bus.engine.begin() as connection:  # as if that process died mid-request
        await connection.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.key == "crashy")
            .values(
                state=store.KeyState.COMMITTED.value, locked_until=clock.now() + store.CLAIM_LEASE
            )
        )
    await shop.faults()
    assert (await shop.pay(buyer, booking_id, key="crashy")).status_code == 409  # lease runs
    clock.advance(store.CLAIM_LEASE.total_seconds())
    resumed = await shop.pay(buyer, booking_id, key="crashy")
    assert resumed.status_code == 201, resumed.text
    assert len(await shop.charges()) == 1
    await shop.check_invariants()


async def test_cancelling_an_event_refunds_its_paid_bookings(shop: Shop) -> None:
    paid_buyer, paid_id, sale = await shop.held_booking(quantity=2)
    assert (await shop.pay(paid_buyer, paid_id)).status_code == 201
    held_buyer, held_id, _ = await shop.held_booking(sale, quantity=1)
    cancelled = await shop.client.post(
        f"{API}/events/{sale.event.id}/cancel",
        headers={**sale.organizer.headers, "Idempotency-Key": "cancel-event"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await shop.booking(paid_buyer, paid_id))["status"] == "refunded"
    assert (await shop.booking(held_buyer, held_id))["status"] == "cancelled"
    assert len((await shop.provider.get("/v1/refunds")).json()["items"]) == 1
    await shop.check_invariants()
