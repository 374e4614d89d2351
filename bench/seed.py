"""Seeding: accounts inserted with SQL (one shared password hash) and tokens minted with the app's
own signing keys, so login hashing is not what is measured; events through the app's commands."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import insert

from ticketflow.adapters.ids import new_id
from ticketflow.adapters.tables import users
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Actor, Role
from ticketflow.services.messagebus import MessageBus

INSERT_CHUNK = 5_000
# Nobody logs in with it: a cheap hash is enough for a row that must hold one.
PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("bench-pass")
STARTS_IN = timedelta(days=30)


@dataclass(frozen=True)
class Sale:
    """A published event with one ticket type on sale."""

    event_id: str
    ticket_type_id: str
    total: int


async def accounts(bus: MessageBus, count: int, role: Role = Role.USER) -> list[Actor]:
    """`count` accounts inserted in a few statements."""
    now = bus.deps.clock.now()
    run = uuid.uuid4().hex[:8]
    actors = [Actor(new_id(), role) for _ in range(count)]
    rows = [
        {
            "id": actor.user_id,
            "email": f"{role.value}-{run}-{index}@bench.example",
            "password_hash": PASSWORD_HASH,
            "role": role.value,
            "version": 1,
            "created_at": now,
        }
        for index, actor in enumerate(actors)
    ]
    async with bus.engine.begin() as connection:
        for start in range(0, len(rows), INSERT_CHUNK):
            await connection.execute(insert(users), rows[start : start + INSERT_CHUNK])
    return actors


def access_tokens(bus: MessageBus, actors: list[Actor]) -> tuple[str, ...]:
    """A valid access token per account, each on a session of its own that nobody ends."""
    now = bus.deps.clock.now()
    tokens = bus.deps.tokens
    return tuple(tokens.access_token(actor.user_id, actor.role, new_id(), now) for actor in actors)


async def sale(
    bus: MessageBus,
    organizer: Actor,
    total: int,
    *,
    title: str,
    max_per_booking: int = 10,
    max_tickets_per_buyer: int | None = 10,
    starts_in: timedelta = STARTS_IN,
    sales_start: datetime | None = None,
    waiting_room: dict[str, Any] | None = None,
) -> Sale:
    """A published event on sale now (or from `sales_start`), starting in `starts_in` (the list
    shows the soonest first), with one ticket type of `total`; capped per buyer as a new event
    is by default; `waiting_room`: its room's configuration (domain/waiting_room.py's form)."""
    starts_at = bus.deps.clock.now() + starts_in
    event = await bus.handle(
        cmd.CreateEvent(
            actor=organizer,
            title=title,
            description="TicketFlow benchmark",
            venue="Bench Hall",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=3),
            max_tickets_per_buyer=max_tickets_per_buyer,
            sales_start=sales_start,
            waiting_room=waiting_room,
        )
    )
    ticket_type = await bus.handle(
        cmd.AddTicketType(
            actor=organizer,
            event_id=event.id,
            name="General admission",
            price_minor=4_500,
            currency="EUR",
            total=total,
            max_per_booking=max_per_booking,
        )
    )
    await bus.handle(cmd.PublishEvent(actor=organizer, event_id=event.id))
    return Sale(str(event.id), str(ticket_type.id), total)
