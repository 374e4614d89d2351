"""The dashboard's sales over time on both backends: tickets issued per hour, refunded ones
left out, other events' sales not counted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ticketflow.adapters.clock import ManualClock
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services.sales_history import HOUR, tickets_sold_over_time

from ..builders import account, app_bus, event_on_sale
from .paid_bookings import paid_booking, paying_client


async def test_tickets_sold_are_counted_per_hour_without_refunded_ones(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        bus = app_bus(client)
        sale, other = await event_on_sale(bus), await event_on_sale(bus)
        buyer = await account(bus)
        await paid_booking(bus, buyer, sale, 2)
        await paid_booking(bus, buyer, other, 5)
        clock.advance(2 * 3600 + 60)
        refunded = await paid_booking(bus, buyer, sale, 4)
        await paid_booking(bus, buyer, sale, 1)
        await bus.handle(cmd.RefundBooking(sale.organizer.actor, refunded))
        async with bus.engine.connect() as db:
            series, step = await tickets_sold_over_time(db, sale.event.id)
    assert step == HOUR
    noon = datetime(2026, 6, 1, 12, tzinfo=UTC)  # the clock fixture's start
    assert [(period.starts_at, period.tickets) for period in series] == [
        (noon, 2),
        (noon + HOUR, 0),
        (noon + 2 * HOUR, 1),
    ]
