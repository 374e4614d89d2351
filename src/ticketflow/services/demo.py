"""Demo data for `make run`: accounts and one published event, only into an empty database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from ticketflow.adapters.tables import users
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Actor, Role
from ticketflow.services.messagebus import MessageBus

DEMO_PASSWORD = "demo-password"


@dataclass(frozen=True)
class DemoAccounts:
    admin: str = "admin@ticketflow.demo"
    organizer: str = "organizer@ticketflow.demo"
    buyer: str = "buyer@ticketflow.demo"
    password: str = DEMO_PASSWORD


async def seed_demo(bus: MessageBus) -> DemoAccounts | None:
    """Seed and return the demo accounts; None (and nothing written) if any user exists."""
    async with bus.engine.connect() as connection:
        if await connection.scalar(select(func.count()).select_from(users)):
            return None
    accounts = DemoAccounts()
    await bus.handle(cmd.RegisterUser(accounts.admin, accounts.password, Role.ADMIN))
    organizer = await bus.handle(
        cmd.RegisterUser(accounts.organizer, accounts.password, Role.MANAGER)
    )
    await bus.handle(cmd.RegisterUser(accounts.buyer, accounts.password, Role.USER))
    actor = Actor(organizer.id, Role.MANAGER)
    starts_at = bus.deps.clock.now().replace(hour=19, minute=0, second=0, microsecond=0)
    starts_at += timedelta(days=30)
    event = await bus.handle(
        cmd.CreateEvent(
            actor=actor,
            title="TicketFlow Live: Demo Night",
            description="A demo concert seeded by `ticketflow seed-demo`.",
            venue="Main Hall, Berlin",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=4),
        )
    )
    for name, price, total, per_booking in (
        ("General Admission", 4500, 500, 10),
        ("VIP", 12000, 50, 4),
    ):
        await bus.handle(
            cmd.AddTicketType(
                actor=actor,
                event_id=event.id,
                name=name,
                price_minor=price,
                currency="EUR",
                total=total,
                max_per_booking=per_booking,
            )
        )
    await bus.handle(cmd.PublishEvent(actor=actor, event_id=event.id))
    return accounts
