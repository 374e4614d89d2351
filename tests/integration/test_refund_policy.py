"""The refund policy (issue 16, part 2): a buyer's own refund or cancel of a paid booking is
refused once a ticket is checked in, once the event started, or after its refund deadline; the
organizer and admins still decide, audited; a scan and a refund of one ticket never both win."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import domain_events
from ticketflow.domain.model import Role

from ..builders import API, Account, account, book, event_body, problem, signed_in_again
from ..invariants import assert_invariants
from .paid_bookings import Door, paid_booking, ticket_codes


async def _refund(door: Door, by: Account, booking_id: UUID | None = None) -> httpx.Response:
    headers = {**by.headers, "Idempotency-Key": str(uuid.uuid4())}
    booking = booking_id or door.booking_id
    return await door.client.post(f"{API}/bookings/{booking}/refund", headers=headers)


async def _cancel(door: Door, by: Account) -> httpx.Response:
    return await door.client.post(f"{API}/bookings/{door.booking_id}/cancel", headers=by.headers)


def _not_allowed(answer: httpx.Response, because: str) -> None:
    body = problem(answer, 409)
    assert body["type"] == "urn:ticketflow:problem:refund-not-allowed", body
    assert because in body["detail"], body["detail"]


async def _refund_reasons(door: Door) -> list[str]:
    async with door.bus.engine.connect() as connection:
        rows = await connection.execute(
            select(domain_events.c.data).where(domain_events.c.type == "payment.refund_requested")
        )
        return [row.data["reason"] for row in rows]


async def _set_deadline(door: Door, deadline: object, by: Account | None = None) -> None:
    answer = await door.client.patch(
        f"{API}/events/{door.sale.event.id}",
        json={"refund_deadline": deadline},
        headers=(by or door.sale.organizer).headers,
    )
    assert answer.status_code == 200, answer.text


async def test_the_buyer_may_refund_before_anything_closes_it(door: Door) -> None:
    answer = await _refund(door, door.buyer)
    assert answer.status_code == 200 and answer.json()["status"] == "refunded"
    assert await _refund_reasons(door) == ["requested"]


async def test_a_checked_in_ticket_ends_the_buyers_refund_but_not_the_organizers(
    door: Door,
) -> None:
    assert (await door.scan(door.codes[1])).status_code == 201
    _not_allowed(await _refund(door, door.buyer), "checked in")
    _not_allowed(await _cancel(door, door.buyer), "checked in")  # a paid cancel is a refund
    answer = await _refund(door, door.sale.organizer)
    assert answer.status_code == 200 and answer.json()["status"] == "refunded"
    assert await _refund_reasons(door) == ["decided_by_manager"]
    await assert_invariants(door.bus.engine)


async def test_the_start_of_the_event_ends_the_buyers_refund(
    door: Door, clock: ManualClock
) -> None:
    clock.advance((door.sale.event.starts_at - clock.now()).total_seconds())
    buyer = await signed_in_again(door.bus, door.buyer)
    _not_allowed(await _refund(door, buyer), "The event started at")
    admin = await account(door.bus, Role.ADMIN)
    assert (await _refund(door, admin)).status_code == 200
    assert await _refund_reasons(door) == ["decided_by_admin"]


async def test_the_refund_deadline_ends_the_buyers_refund(door: Door, clock: ManualClock) -> None:
    deadline = clock.now() + timedelta(days=2)
    await _set_deadline(door, deadline.isoformat())
    shown = await door.client.get(f"{API}/events/{door.sale.event.id}")
    assert shown.json()["refund_deadline"] == deadline.isoformat().replace("+00:00", "Z")
    clock.advance(timedelta(days=2).total_seconds())
    buyer = await signed_in_again(door.bus, door.buyer)
    _not_allowed(await _refund(door, buyer), "refund deadline")
    _not_allowed(await _cancel(door, buyer), "refund deadline")
    organizer = await signed_in_again(door.bus, door.sale.organizer)
    await _set_deadline(door, None, organizer)  # lifted: refunds run until the start again
    assert (await _refund(door, buyer)).status_code == 200


async def test_a_deadline_after_the_start_is_a_422(door: Door, clock: ManualClock) -> None:
    late = door.sale.event.starts_at + timedelta(minutes=1)
    answer = await door.client.patch(
        f"{API}/events/{door.sale.event.id}",
        json={"refund_deadline": late.isoformat()},
        headers=door.sale.organizer.headers,
    )
    assert [e["field"] for e in problem(answer, 422)["errors"]] == ["refund_deadline"]
    made = await door.client.post(
        f"{API}/events",
        json=event_body(
            clock.now(), refund_deadline=(clock.now() + timedelta(days=31)).isoformat()
        ),
        headers=door.sale.organizer.headers,
    )
    assert [e["field"] for e in problem(made, 422)["errors"]] == ["refund_deadline"]


async def test_a_pending_hold_is_cancelled_whatever_the_policy(
    door: Door, clock: ManualClock
) -> None:
    await _set_deadline(door, (clock.now() + timedelta(seconds=1)).isoformat())
    clock.advance(1)
    held = await book(
        door.client, door.buyer, door.sale.event.id, (door.sale.ticket_types[0].id, 1)
    )
    assert held.status_code == 201, held.text
    cancelled = await door.client.post(
        f"{API}/bookings/{held.json()['id']}/cancel", headers=door.buyer.headers
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
async def test_a_scan_and_a_refund_of_one_ticket_never_both_win(door: Door) -> None:
    """Eight rounds (the door's sale has 8 tickets left), each a fresh paid booking, its scan
    and the buyer's refund sent at once: either the door admitted and the refund was refused,
    or the refund won and the door saw a void ticket. Never a refunded booking with an
    admitted ticket."""
    outcomes = set()
    for _ in range(8):
        booking_id = await paid_booking(door.bus, door.buyer, door.sale, quantity=1)
        [code] = await ticket_codes(door.bus, booking_id)
        scanned, refunded = await asyncio.gather(
            door.scan(code), _refund(door, door.buyer, booking_id)
        )
        if scanned.status_code == 201:
            _not_allowed(refunded, "checked in")
            outcomes.add("admitted")
        else:
            assert problem(scanned, 409)["type"] == "urn:ticketflow:problem:ticket-void"
            assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
            outcomes.add("refunded")
    assert outcomes  # each round ended one way or the other, never both
    await assert_invariants(door.bus.engine)
