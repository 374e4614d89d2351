"""Data builders: users with tokens, events on sale, holds over the bus and over HTTP; over copied
dicts in every test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Actor, Booking, Event, Role, TicketType
from ticketflow.services.messagebus import MessageBus

API = "/api/v1"
PASSWORD = "correct-horse-battery"
# An id no row has: fixed, so that every test process (pytest-xdist) collects the same tests.
NOBODYS_ID = "5e1d0b7a-2c4f-4e8a-9b3d-000000000404"
Id = UUID | str


@dataclass(frozen=True)
class Account:
    actor: Actor
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def account(bus: MessageBus, role: Role = Role.USER) -> Account:
    """A registered user, logged in: the access token of a real session."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    user = await bus.handle(cmd.RegisterUser(email, PASSWORD, role))
    session = await bus.handle(cmd.LogIn(email, PASSWORD))
    return Account(Actor(user.id, role), email, session.access_token)


async def signed_in_again(bus: MessageBus, who: Account) -> Account:
    """`who` with a fresh access token: after the clock jumped past the old one's 15 minutes."""
    session = await bus.handle(cmd.LogIn(who.email, PASSWORD))
    return Account(who.actor, who.email, session.access_token)


@dataclass(frozen=True)
class EventOnSale:
    event: Event
    organizer: Account
    ticket_types: list[TicketType]

    def line(self, quantity: int = 1, type_index: int = 0) -> tuple[UUID, int]:
        """A booking line: `quantity` tickets of the sale's first (or `type_index`th) type."""
        return self.ticket_types[type_index].id, quantity


async def event_on_sale(
    bus: MessageBus,
    organizer: Account | None = None,
    *,
    totals: tuple[int, ...] = (100,),
    max_per_booking: int = 10,
    max_per_buyer: int | None = None,
    publish: bool = True,
    **event_fields: Any,
) -> EventOnSale:
    """A published event starting in 30 days with one ticket type per entry of `totals`
    (`max_per_buyer`: each type's cap; the event's is an event field)."""
    organizer = organizer or await account(bus, Role.MANAGER)
    starts_at = bus.deps.clock.now() + timedelta(days=30)
    fields: dict[str, Any] = {
        "title": "Flash Sale Night",
        "description": "",
        "venue": "Hall A",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=3),
        # Most tests hold many tickets as one buyer; the tests of the cap set one.
        "max_tickets_per_buyer": None,
        **event_fields,
    }
    event = await bus.handle(cmd.CreateEvent(actor=organizer.actor, **fields))
    types = [
        await bus.handle(
            cmd.AddTicketType(
                actor=organizer.actor,
                event_id=event.id,
                name=f"Tier {index}",
                price_minor=1000 * (index + 1),
                currency="EUR",
                total=total,
                max_per_booking=max_per_booking,
                max_per_buyer=max_per_buyer,
            )
        )
        for index, total in enumerate(totals)
    ]
    if publish:
        event = await bus.handle(cmd.PublishEvent(actor=organizer.actor, event_id=event.id))
    return EventOnSale(event, organizer, types)


async def hold(
    bus: MessageBus, buyer: Account, event_id: UUID, *lines: tuple[UUID, int]
) -> Booking:
    """`buyer` holds (ticket type id, quantity) `lines` of the event, through the bus."""
    booking: Booking = await bus.handle(cmd.HoldTickets(buyer.actor, event_id, lines))
    return booking


def app_bus(client: httpx.AsyncClient) -> MessageBus:
    """The bus the in-process app of the `client` fixture runs on."""
    bus: MessageBus = client.app_bus  # type: ignore[attr-defined]
    return bus


# HTTP request bodies, JSON-ready, valid unless overridden; and the check every error answer meets.


def event_body(now: datetime, **overrides: Any) -> dict[str, Any]:
    """A POST /events body: an event starting in 30 days; datetimes become ISO 8601 strings."""
    starts_at = now + timedelta(days=30)
    fields: dict[str, Any] = {
        "title": "Flash Sale Night",
        "description": "",
        "venue": "Hall A",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=3),
        **overrides,
    }
    return {name: v.isoformat() if isinstance(v, datetime) else v for name, v in fields.items()}


def ticket_type_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Standard",
        "price_minor": 2500,
        "currency": "EUR",
        "total": 100,
        "max_per_booking": 10,
        **overrides,
    }


def booking_body(event_id: Id, *lines: tuple[Id, int]) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "lines": [{"ticket_type_id": str(tt), "quantity": quantity} for tt, quantity in lines],
    }


async def book(
    client: httpx.AsyncClient,
    buyer: Account | None,
    event_id: Id,
    *lines: tuple[Id, int],
    key: str | None = None,
) -> httpx.Response:
    """POST /bookings: `buyer` (None: nobody signed in) asks for (ticket type id, quantity)
    `lines` of the event, under Idempotency-Key `key` if given; the answer, whatever it is."""
    headers = {**(buyer.headers if buyer else {}), **({"Idempotency-Key": key} if key else {})}
    return await client.post(
        f"{API}/bookings", json=booking_body(event_id, *lines), headers=headers
    )


async def held(
    client: httpx.AsyncClient, buyer: Account, event_id: Id, *lines: tuple[Id, int]
) -> dict[str, Any]:
    """The booking `book` answers, after checking the hold was made (201)."""
    response = await book(client, buyer, event_id, *lines)
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()
    return booking


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The RFC 9457 body of an error answer, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:ticketflow:problem:")
    assert body["title"] and body["detail"]
    return body


def error_fields(response: httpx.Response) -> set[str]:
    """The fields a 422 problem names."""
    return {error["field"] for error in problem(response, 422)["errors"]}
