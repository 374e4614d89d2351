"""Idempotency-Key: a repeat replays the first answer; other body 422; in flight 409."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from sqlalchemy import func, select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.idempotency_store import (
    CLAIM_LEASE,
    ClaimOutcome,
    IdempotencyKeys,
    KeyScope,
)
from ticketflow.adapters.tables import bookings
from ticketflow.api.idempotency import fingerprint
from ticketflow.domain import commands as cmd
from ticketflow.services.messagebus import MessageBus

from ..builders import PASSWORD, Account, EventOnSale, account, app_bus, book, event_on_sale
from .keys import booking_key, claim


async def _booking_count(bus: MessageBus) -> int:
    async with bus.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(bookings)) or 0)


def _raw_booking(sale: EventOnSale) -> bytes:
    """The body `_book` sends for one ticket, as bytes (for fingerprints)."""
    body = {
        "event_id": str(sale.event.id),
        "lines": [{"ticket_type_id": str(sale.ticket_types[0].id), "quantity": 1}],
    }
    return json.dumps(body).encode()


async def test_repeat_replays_first_answer_and_books_once(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    first = await book(client, buyer, sale.event.id, sale.line(), key="key-1")
    again = await book(client, buyer, sale.event.id, sale.line(), key="key-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _booking_count(bus) == 1


async def test_same_key_other_request_is_422(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    await book(client, buyer, sale.event.id, sale.line(), key="key-2")
    other = await book(client, buyer, sale.event.id, sale.line(2), key="key-2")
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert await _booking_count(bus) == 1


async def test_keys_belong_to_their_user(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale = await event_on_sale(bus)
    for buyer in (await account(bus), await account(bus)):
        assert (
            await book(client, buyer, sale.event.id, sale.line(), key="shared-key")
        ).status_code == 201
    assert await _booking_count(bus) == 2


async def test_refusals_are_replayed_too(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus, totals=(1,)), await account(bus)
    assert (
        await book(client, buyer, sale.event.id, sale.line(2), key="too-many")
    ).status_code == 409
    replay = await book(client, buyer, sale.event.id, sale.line(2), key="too-many")
    assert replay.status_code == 409
    assert replay.headers["Idempotent-Replayed"] == "true"


async def test_key_in_flight_is_409_with_retry_after(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    body = _raw_booking(sale)
    taken = await claim(bus, booking_key(KeyScope(buyer.actor.user_id, "busy"), body))
    assert taken.outcome is ClaimOutcome.PROCEED
    response = await book(client, buyer, sale.event.id, sale.line(), key="busy")
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert await _booking_count(bus) == 0


async def test_key_of_a_crashed_request_is_retaken_after_its_lease(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    body = _raw_booking(sale)
    await claim(bus, booking_key(KeyScope(buyer.actor.user_id, "crashed"), body))
    clock.advance(CLAIM_LEASE.total_seconds() + 1)  # the access token is still valid
    assert (await book(client, buyer, sale.event.id, sale.line(), key="crashed")).status_code == 201


async def test_keys_expire_after_their_ttl(client: httpx.AsyncClient, clock: ManualClock) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    await book(client, buyer, sale.event.id, sale.line(), key="old-key")
    clock.advance(bus.deps.settings.idempotency_key_ttl_seconds + 1)
    token = (await bus.handle(cmd.LogIn(buyer.email, PASSWORD))).access_token
    fresh = await book(
        client, Account(buyer.actor, buyer.email, token), sale.event.id, sale.line(), key="old-key"
    )
    assert fresh.status_code == 201
    assert "Idempotent-Replayed" not in fresh.headers
    assert await _booking_count(bus) == 2


async def test_malformed_key_is_400(client: httpx.AsyncClient) -> None:
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    response = await book(client, buyer, sale.event.id, sale.line(), key="x" * 256)
    assert response.status_code == 400
    assert await _booking_count(bus) == 0


def test_fingerprint_ignores_json_spacing_and_key_order() -> None:
    event = str(uuid.uuid4())
    a = fingerprint("POST", "/p", f'{{"a": 1, "event": "{event}"}}'.encode())
    b = fingerprint("POST", "/p", f'{{"event":"{event}","a":1}}'.encode())
    assert a == b != fingerprint("POST", "/q", b'{"a": 1}')


async def test_a_failure_after_commit_never_lets_the_retry_repeat_the_change(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """5xx after the change committed: the key is kept (answer lost), not forgotten."""
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    body = _raw_booking(sale)
    scope = KeyScope(buyer.actor.user_id, "committed-then-500")
    await claim(bus, booking_key(scope, body))
    booking = await bus.handle(
        cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),))
    )
    async with IdempotencyKeys.own_transaction(bus.engine) as keys:
        await keys.mark_committed([(scope, "booking", booking.id)])  # as its commit did
        await keys.release(scope, clock.now())  # then it answered 500
    retry = await book(client, buyer, sale.event.id, sale.line(), key="committed-then-500")
    assert retry.status_code == 409
    assert str(booking.id) in retry.json()["detail"]
    assert await _booking_count(bus) == 1


async def test_concurrent_twins_of_one_key_book_once(client: httpx.AsyncClient) -> None:
    """Twins can land in one batch of claims: only the first runs, the others wait their turn."""
    bus = app_bus(client)
    sale, buyer = await event_on_sale(bus), await account(bus)
    answers = await asyncio.gather(
        *(book(client, buyer, sale.event.id, sale.line(), key="twin") for _ in range(20))
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    assert await _booking_count(bus) == 1
    firsts = {answer.content for answer in answers if answer.status_code == 201}
    assert len(firsts) == 1  # later 201s are byte-for-byte replays
