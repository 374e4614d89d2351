"""Check-in at the door: the organizer (or an admin) admits each ticket once; a second scan
learns when the first was; void tickets, other events' codes and cancelled events admit nobody."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from uuid import UUID

import pytest
from sqlalchemy import Select, func, select

from ticketflow.adapters.tables import check_ins, domain_events
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import account, event_on_sale, problem
from .paid_bookings import Door, paid_booking, ticket_codes


async def _count(bus: MessageBus, query: Select[tuple[int]]) -> int:
    async with bus.engine.connect() as connection:
        return int(await connection.scalar(query) or 0)


async def test_a_ticket_is_admitted_once_and_a_second_scan_says_when(door: Door) -> None:
    first = await door.scan(door.codes[0])
    assert first.status_code == 201, first.text
    admitted = first.json()
    assert admitted["booking_id"] == str(door.booking_id)
    assert admitted["ticket_type_id"] == str(door.sale.ticket_types[0].id)
    assert admitted["ticket_type_name"] == door.sale.ticket_types[0].name
    assert admitted["admitted_by"] == str(door.sale.organizer.actor.user_id)

    again = problem(await door.scan(door.codes[0]), 409)
    assert again["type"] == "urn:ticketflow:problem:already-checked-in"
    assert datetime.fromisoformat(again["admitted_at"]) == datetime.fromisoformat(
        admitted["admitted_at"]
    )
    assert (await door.scan(door.codes[1])).status_code == 201  # the other seat: its own ticket

    recorded = select(func.count()).where(
        domain_events.c.type == "ticket.checked_in",
        domain_events.c.stream_id == UUID(admitted["ticket_id"]),
        domain_events.c.actor_id == door.sale.organizer.actor.user_id,
    )
    assert await _count(door.bus, recorded) == 1


async def test_only_the_organizer_or_an_admin_admits(door: Door) -> None:
    other_manager = await account(door.bus, Role.MANAGER)
    problem(await door.scan(door.codes[0], by=other_manager), 403)
    problem(await door.scan(door.codes[0], by=door.buyer), 403)
    assert await _count(door.bus, select(func.count()).select_from(check_ins)) == 0
    admin = await account(door.bus, Role.ADMIN)
    assert (await door.scan(door.codes[0], by=admin)).status_code == 201


async def test_an_unknown_code_or_one_of_another_event_is_404(door: Door) -> None:
    problem(await door.scan("no-such-code"), 404)
    elsewhere = await event_on_sale(door.bus, door.sale.organizer, totals=(5,))
    other_booking = await paid_booking(door.bus, door.buyer, elsewhere, quantity=1)
    [other_code] = await ticket_codes(door.bus, other_booking)
    problem(await door.scan(other_code), 404)


async def test_a_refunded_bookings_ticket_is_void(door: Door) -> None:
    await door.bus.handle(cmd.RefundBooking(door.buyer.actor, door.booking_id))
    refused = problem(await door.scan(door.codes[0]), 409)
    assert refused["type"] == "urn:ticketflow:problem:ticket-void"


async def test_a_cancelled_event_admits_nobody(door: Door) -> None:
    await door.bus.handle(cmd.CancelEvent(door.sale.organizer.actor, door.sale.event.id))
    refused = problem(await door.scan(door.codes[0]), 409)
    assert refused["type"] == "urn:ticketflow:problem:invalid-state"
    assert "cancelled" in refused["detail"]


async def test_a_repeated_idempotency_key_replays_the_first_admission(door: Door) -> None:
    key = str(uuid.uuid4())
    first = await door.scan(door.codes[0], key=key)
    replayed = await door.scan(door.codes[0], key=key)
    assert first.status_code == replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.content == first.content
    problem(await door.scan(door.codes[0], key=str(uuid.uuid4())), 409)  # a new scan: refused


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
async def test_concurrent_scans_of_one_code_admit_exactly_once(door: Door) -> None:
    answers = await asyncio.gather(*(door.scan(door.codes[0]) for _ in range(8)))
    assert sorted(answer.status_code for answer in answers) == [201] + [409] * 7
    admitted_at = {datetime.fromisoformat(answer.json()["admitted_at"]) for answer in answers}
    assert len(admitted_at) == 1  # every refusal names the one admission
    assert await _count(door.bus, select(func.count()).select_from(check_ins)) == 1
    events = select(func.count()).where(domain_events.c.type == "ticket.checked_in")
    assert await _count(door.bus, events) == 1
