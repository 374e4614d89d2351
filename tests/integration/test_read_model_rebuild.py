"""Invariant 4: after a random workload (holds, bursts through the batcher, cancels, expiries,
payments through the sandbox provider, refunds, ticket type and event changes, event
cancellations) the read models agree with the state they summarize, and replaying the event store
rebuilds them row for row. On PostgreSQL and on SQLite, each seed a different workload."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import stamina
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.payment_gateway import HttpPaymentGateway
from ticketflow.adapters.read_model_writes import READ_MODELS
from ticketflow.adapters.tables import bookings
from ticketflow.bootstrap import build_bus
from ticketflow.cli import app
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError
from ticketflow.domain.model import BookingStatus, Role
from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.projection_rebuild import rebuild_read_models
from ticketflow.services.sweeper import sweep_once

from ..builders import Account, EventOnSale, account, event_on_sale, hold
from ..conftest import FAST_PASSWORDS, settings_for, wipe
from ..invariants import assert_invariants, assert_read_models_match_state
from ..provider_in_process import InProcessProvider

STEPS = 120
Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3):
        yield


@pytest.fixture
async def shop_bus(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[MessageBus]:
    """A bus that pays through the sandbox provider, served in-process."""
    provider_app = create_provider_app(ProviderSettings(ledger=tmp_path / "ledger.db"))
    async with provider_app.router.lifespan_context(provider_app):
        transport = httpx.ASGITransport(app=provider_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://provider") as provider:
            gateway = HttpPaymentGateway(settings, InProcessProvider(provider))
            bus = build_bus(settings, clock, FAST_PASSWORDS, gateway)
            await wipe(bus.engine)
            try:
                yield bus
            finally:
                await bus.engine.dispose()


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of every read model, in key order."""
    async with engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in (
                    await connection.execute(select(table).order_by(*table.primary_key.columns))
                ).mappings()
            ]
            for table in READ_MODELS
        }


class Workload:
    """Random use cases through the message bus; refusals (sold out, closed...) are part of it."""

    def __init__(self, bus: MessageBus, clock: ManualClock, seed: int) -> None:
        self.bus, self.clock, self.rng = bus, clock, random.Random(seed)
        self.buyer_of: dict[UUID, Account] = {}  # booking id -> who booked it

    async def open(self) -> None:
        self.organizer = await account(self.bus, Role.MANAGER)
        self.buyers = [await account(self.bus) for _ in range(3)]
        self.sales = [
            await event_on_sale(
                self.bus, self.organizer, totals=(self.rng.randint(3, 12), self.rng.randint(3, 12))
            )
            for _ in range(3)
        ]

    async def run(self, steps: int) -> None:
        ops: dict[Callable[[], Awaitable[None]], float] = {
            self.hold: 6,
            self.burst: 2,
            self.rush: 2,
            self.cancel: 2,
            self.pay: 4,
            self.refund: 2,
            self.let_time_pass: 2,
            self.change_ticket_type: 2,
            self.retitle_event: 1,
            self.cancel_event: 0.3,
        }
        for _ in range(steps):
            [op] = self.rng.choices(list(ops), weights=list(ops.values()))
            with contextlib.suppress(DomainError):  # refused: nothing changed, no event
                await op()

    def sale(self) -> EventOnSale:
        return self.rng.choice(self.sales)

    async def hold_as(self, buyer: Account, event_id: UUID, lines: tuple[Any, ...]) -> None:
        booking = await hold(self.bus, buyer, event_id, *lines)
        self.buyer_of[booking.id] = buyer

    async def hold(self) -> None:
        sale = self.sale()
        types = self.rng.sample(sale.ticket_types, self.rng.randint(1, len(sale.ticket_types)))
        lines = tuple((tt.id, self.rng.randint(1, 3)) for tt in types)
        await self.hold_as(self.rng.choice(self.buyers), sale.event.id, lines)

    async def burst(self) -> None:
        """One-line holds at once on one ticket type: the batcher commits them together."""
        sale = self.sale()
        tier = self.rng.choice(sale.ticket_types).id
        outcomes = await asyncio.gather(
            *(
                self.hold_as(self.rng.choice(self.buyers), sale.event.id, ((tier, 1),))
                for _ in range(self.rng.randint(3, 8))
            ),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, DomainError):
                raise outcome

    async def rush(self) -> None:
        """Several use cases at once, each in its own transaction: on PostgreSQL they commit in
        an order of their own, which need not be the order of their events' seqs."""
        ops = [self.hold, self.cancel, self.pay, self.change_ticket_type, self.hold]
        outcomes = await asyncio.gather(
            *(op() for op in self.rng.sample(ops, self.rng.randint(2, len(ops)))),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, DomainError):
                raise outcome

    async def some(self, status: BookingStatus) -> tuple[UUID, Account]:
        async with self.bus.engine.connect() as connection:
            found = (
                await connection.scalars(
                    select(bookings.c.id).where(bookings.c.status == status.value)
                )
            ).all()
        if not found:
            raise DomainError("no such booking to pick")
        booking_id = self.rng.choice(sorted(found))
        return booking_id, self.buyer_of[booking_id]

    async def cancel(self) -> None:
        booking_id, buyer = await self.some(BookingStatus.PENDING)
        await self.bus.handle(cmd.CancelBooking(buyer.actor, booking_id))

    async def pay(self) -> None:
        booking_id, buyer = await self.some(BookingStatus.PENDING)
        card = self.rng.choice(["pm_card_visa"] * 4 + ["pm_card_declined"])
        await self.bus.handle(cmd.PayForBooking(buyer.actor, booking_id, card))

    async def refund(self) -> None:
        booking_id, buyer = await self.some(BookingStatus.CONFIRMED)
        await self.bus.handle(cmd.RefundBooking(buyer.actor, booking_id))

    async def let_time_pass(self) -> None:
        self.clock.advance(self.rng.choice([30, 60, 120, 300, 700]))
        await sweep_once(self.bus)

    async def change_ticket_type(self) -> None:
        tier = self.rng.choice(self.sale().ticket_types)
        changes: dict[str, Any] = self.rng.choice(
            [
                {"total": self.rng.randint(0, 15)},
                {"name": f"Tier {self.rng.randint(100, 999)}"},
                {"price_minor": self.rng.randint(500, 5000)},
            ]
        )
        await self.bus.handle(cmd.UpdateTicketType(self.organizer.actor, tier.id, changes))

    async def retitle_event(self) -> None:
        title = f"Renamed {self.rng.randint(100, 999)}"
        event_id = self.sale().event.id
        await self.bus.handle(cmd.UpdateEvent(self.organizer.actor, event_id, {"title": title}))

    async def cancel_event(self) -> None:
        sale = self.rng.choice(self.sales[1:])  # the first stays on sale throughout
        await self.bus.handle(cmd.CancelEvent(self.organizer.actor, sale.event.id))


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rebuilt_read_models_equal_the_live_ones_after_a_random_workload(
    shop_bus: MessageBus, clock: ManualClock, seed: int
) -> None:
    workload = Workload(shop_bus, clock, seed)
    await workload.open()
    await workload.run(STEPS)
    await assert_invariants(shop_bus.engine)
    await assert_read_models_match_state(shop_bus.engine)
    live = await snapshot(shop_bus.engine)
    assert live["rm_bookings"], "the workload booked nothing: a test of nothing"
    # Small batches: a booking's events fall in different batches; one batch: all in one.
    for batch_size in (7, 100_000):
        replayed = await rebuild_read_models(shop_bus.engine, batch_size=batch_size)
        assert replayed > 0
        assert await snapshot(shop_bus.engine) == live, f"seed {seed}, batch size {batch_size}"


def test_the_cli_rebuilds_the_read_models_with_progress(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ticketflow projections rebuild` (synchronous test: the command runs its own loop).
    No app here: the data is written and read back by buses of the test's own, each on the loop
    `asyncio.run` gives it."""

    async def seeded() -> Snapshot:
        bus = build_bus(settings_for(sqlite_url), passwords=FAST_PASSWORDS)
        try:
            await wipe(bus.engine)
            sale = await event_on_sale(bus, totals=(4, 6))
            buyer = await account(bus)
            lines = ((sale.ticket_types[0].id, 2), (sale.ticket_types[1].id, 1))
            await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, lines))
            return await snapshot(bus.engine)
        finally:
            await bus.engine.dispose()

    async def current() -> Snapshot:
        bus = build_bus(settings_for(sqlite_url))
        try:
            return await snapshot(bus.engine)
        finally:
            await bus.engine.dispose()

    live = asyncio.run(seeded())
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    usage = runner.invoke(app, ["projections", "rebuild", "--help"])
    assert usage.exit_code == 0 and "Empty every read model" in usage.output
    result = runner.invoke(app, ["projections", "rebuild", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "read models rebuilt from" in result.output
    assert asyncio.run(current()) == live
