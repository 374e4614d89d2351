"""An app that pays through the sandbox provider served in-process, and paid bookings on it:
what the e-mail, check-in and refund tests start from; and a door where the organizer scans
the tickets of one paid booking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
from sqlalchemy import select

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.payment_gateway import HttpPaymentGateway
from ticketflow.adapters.tables import tickets
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.services.messagebus import MessageBus

from ..builders import API, Account, EventOnSale, hold
from ..conftest import FAST_PASSWORDS, serving
from ..provider_in_process import InProcessProvider


@asynccontextmanager
async def in_process_gateway(settings: Settings, ledger: Path) -> AsyncIterator[HttpPaymentGateway]:
    """Our gateway, charging the sandbox provider served in-process."""
    provider_app = create_provider_app(ProviderSettings(ledger=ledger))
    async with provider_app.router.lifespan_context(provider_app):
        to_provider = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=provider_app), base_url="http://provider"
        )
        yield HttpPaymentGateway(settings, InProcessProvider(to_provider))


@asynccontextmanager
async def paying_client(
    settings: Settings, clock: Clock, ledger: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The conftest `client` (`client.app_bus` included), charging the in-process sandbox."""
    async with in_process_gateway(settings, ledger) as gateway:
        app = create_app(settings, clock, FAST_PASSWORDS, gateway)
        async with serving(app) as client:
            yield client


async def paid_booking(bus: MessageBus, buyer: Account, sale: EventOnSale, quantity: int) -> UUID:
    """A booking of `quantity` tickets of the sale's first type, paid: confirmed, issued."""
    booking = await hold(bus, buyer, sale.event.id, (sale.ticket_types[0].id, quantity))
    await bus.handle(cmd.PayForBooking(buyer.actor, booking.id, "pm_card_visa"))
    booking_id: UUID = booking.id
    return booking_id


async def ticket_codes(bus: MessageBus, booking_id: UUID) -> list[str]:
    async with bus.engine.connect() as connection:
        codes = await connection.scalars(
            select(tickets.c.code).where(tickets.c.booking_id == booking_id)
        )
        return list(codes)


@dataclass(frozen=True)
class Door:
    client: httpx.AsyncClient
    bus: MessageBus
    sale: EventOnSale
    buyer: Account
    booking_id: UUID
    codes: list[str]

    async def scan(
        self, code: str, by: Account | None = None, key: str | None = None
    ) -> httpx.Response:
        headers = (by or self.sale.organizer).headers
        if key:
            headers = {**headers, "Idempotency-Key": key}
        return await self.client.post(
            f"{API}/events/{self.sale.event.id}/check-ins", json={"code": code}, headers=headers
        )
