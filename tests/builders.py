"""Data builders: users with tokens, events on sale; over copied dicts in every test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Actor, Event, Role, TicketType
from ticketflow.services.messagebus import MessageBus

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Account:
    actor: Actor
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def account(bus: MessageBus, role: Role = Role.USER) -> Account:
    """A registered user with a valid access token."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    user = await bus.handle(cmd.RegisterUser(email, PASSWORD, role))
    token = bus.deps.tokens.access_token(user.id, role, bus.deps.clock.now())
    return Account(Actor(user.id, role), email, token)


@dataclass(frozen=True)
class EventOnSale:
    event: Event
    organizer: Account
    ticket_types: list[TicketType]


async def event_on_sale(
    bus: MessageBus,
    organizer: Account | None = None,
    *,
    totals: tuple[int, ...] = (100,),
    max_per_booking: int = 10,
    publish: bool = True,
    **event_fields: Any,
) -> EventOnSale:
    """A published event starting in 30 days with one ticket type per entry of `totals`."""
    organizer = organizer or await account(bus, Role.MANAGER)
    starts_at = bus.deps.clock.now() + timedelta(days=30)
    fields: dict[str, Any] = {
        "title": "Flash Sale Night",
        "description": "",
        "venue": "Hall A",
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=3),
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
            )
        )
        for index, total in enumerate(totals)
    ]
    if publish:
        event = await bus.handle(cmd.PublishEvent(actor=organizer.actor, event_id=event.id))
    return EventOnSale(event, organizer, types)
