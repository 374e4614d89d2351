"""The "email" consumer against a real SMTP server (aiosmtpd): a paid booking's buyer gets their
tickets, one QR code each that decodes to a ticket's code and checks in once; cancellations and
refunds are mailed; a repeated delivery of an event sends nothing more."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from aiosmtpd.controller import Controller
from PIL import Image

from ticketflow.adapters import event_store
from ticketflow.adapters.clock import ManualClock
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services import ticket_emails
from ticketflow.services.event_consumers import (
    EventConsumer,
    EventSource,
    EventStoreReader,
    consume_once,
    event_source_for,
)
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.outbox_relay import redis_relay

from ..builders import API, account, app_bus, event_on_sale, problem
from ..conftest import settings_for
from .conftest import Stack
from .paid_bookings import paid_booking, paying_client, ticket_codes

SENDER = "TicketFlow <tickets@ticketflow.example>"


class Mailbox:
    """An aiosmtpd handler keeping every message it is given (on the server's own thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


@dataclass(frozen=True)
class SmtpServer:
    port: int
    mailbox: Mailbox

    def settings(self, base: Settings, **overrides: object) -> Settings:
        values = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_starttls": False,
            "mail_from": SENDER,
            **overrides,
        }
        return base.model_copy(update=values)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()  # returns once the server answers
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


class EmailConsumer:
    """The "email" consumer of the app, driven by the test: with Redis, the relay publishes and
    the consumer group reads; embedded, it reads the event store."""

    def __init__(self, bus: MessageBus, source: EventSource) -> None:
        self.bus, self.source = bus, source
        handler = ticket_emails.handler_for(bus)
        self.consumer = EventConsumer(
            bus.engine, bus.deps.clock, ticket_emails.CONSUMER, handler, effects_outside=True
        )

    @classmethod
    async def of(cls, bus: MessageBus) -> EmailConsumer:
        return cls(bus, await event_source_for(bus, ticket_emails.CONSUMER))

    async def until(self, mailbox: Mailbox, count: int) -> list[EmailMessage]:
        """Consume until `mailbox` holds `count` messages (10 s at most); then all caught up."""
        deadline = time.monotonic() + 10
        while True:
            if self.bus.deps.redis is not None:
                await redis_relay(self.bus).relay_pending()
            taken = await consume_once(self.source, self.consumer)
            if len(mailbox.messages) >= count and not taken:
                return mailbox.messages
            assert time.monotonic() < deadline, f"{len(mailbox.messages)} of {count} mails came"
            if not taken:
                await asyncio.sleep(0.01)  # polling backoff while the server takes the mail


def _qr_codes(message: EmailMessage) -> list[str]:
    """The text of the QR code in each inline image of the message's HTML part."""
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    decoded = []
    for part in message.walk():
        if part.get_content_type() != "image/png":
            continue
        assert part.get_content_disposition() == "inline"
        assert f'src="cid:{part["Content-ID"].strip("<>")}"' in html
        [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(part.get_content())))
        assert barcode.format == zxingcpp.BarcodeFormat.QRCode
        decoded.append(barcode.text)
    return decoded


@pytest.fixture
async def mail_client(
    stack: Stack, clock: ManualClock, tmp_path: Path, smtp_server: SmtpServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = smtp_server.settings(stack.settings())
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        yield client


async def test_confirmation_mail_has_a_decodable_qr_per_ticket_that_checks_in_once(
    mail_client: httpx.AsyncClient, smtp_server: SmtpServer
) -> None:
    bus = app_bus(mail_client)
    sale = await event_on_sale(bus, totals=(10,), title="Jazz <Night>")
    buyer = await account(bus)
    booking_id = await paid_booking(bus, buyer, sale, quantity=3)

    [mail] = await (await EmailConsumer.of(bus)).until(smtp_server.mailbox, 1)
    assert mail["To"] == buyer.email
    assert mail["From"] == SENDER
    assert mail["Subject"] == "Your tickets for Jazz <Night>"
    text = mail.get_body(("plain",))
    assert text is not None
    issued = await ticket_codes(bus, booking_id)
    assert all(code in text.get_content() for code in issued)  # readable without images too
    decoded = _qr_codes(mail)
    assert sorted(decoded) == sorted(issued)

    check_ins = f"{API}/events/{sale.event.id}/check-ins"
    for code in decoded:
        first = await mail_client.post(
            check_ins, json={"code": code}, headers=sale.organizer.headers
        )
        assert first.status_code == 201, first.text
        again = await mail_client.post(
            check_ins, json={"code": code}, headers=sale.organizer.headers
        )
        assert problem(again, 409)["admitted_at"]


@pytest.fixture
async def mail_bus(
    settings: Settings, clock: ManualClock, tmp_path: Path, smtp_server: SmtpServer
) -> AsyncIterator[MessageBus]:
    """Embedded (no Redis), on PostgreSQL and on SQLite: the consumer reads the event store."""
    async with paying_client(smtp_server.settings(settings), clock, tmp_path / "l.db") as client:
        yield app_bus(client)


async def test_a_repeated_delivery_sends_no_second_mail(
    mail_bus: MessageBus, smtp_server: SmtpServer
) -> None:
    sale = await event_on_sale(mail_bus, totals=(10,))
    await paid_booking(mail_bus, await account(mail_bus), sale, quantity=1)
    consumer = await EmailConsumer.of(mail_bus)
    assert len(await consumer.until(smtp_server.mailbox, 1)) == 1

    async with mail_bus.engine.connect() as connection:
        everything = await event_store.read_after(connection, 0, 1_000)
    for event in everything:  # as if the stream handed every event over again
        assert not await consumer.consumer.apply(event)
    lost = EventStoreReader(mail_bus.engine, mail_bus.deps.clock, "email-position-lost")
    assert await consume_once(lost, consumer.consumer) == len(everything)
    assert len(smtp_server.mailbox.messages) == 1


async def test_a_cancelled_hold_and_a_refund_are_mailed(
    mail_bus: MessageBus, smtp_server: SmtpServer
) -> None:
    sale = await event_on_sale(mail_bus, totals=(10,), title="Opera")
    buyer = await account(mail_bus)
    one = ((sale.ticket_types[0].id, 1),)
    held = await mail_bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, one))
    await mail_bus.handle(cmd.CancelBooking(buyer.actor, held.id))
    paid = await paid_booking(mail_bus, buyer, sale, quantity=2)
    await mail_bus.handle(cmd.RefundBooking(buyer.actor, paid))

    mails = await (await EmailConsumer.of(mail_bus)).until(smtp_server.mailbox, 3)
    cancelled, tickets, refunded = mails
    assert cancelled["Subject"] == "Booking cancelled: Opera"
    assert str(held.id) in cancelled.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert tickets["Subject"] == "Your tickets for Opera"
    assert refunded["Subject"] == "Booking refunded: Opera"
    refund_text = refunded.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "20.00 EUR" in refund_text and "no longer valid" in refund_text
    assert {mail["To"] for mail in mails} == {buyer.email}
    assert len({mail["Message-ID"] for mail in mails}) == 3


async def test_without_an_smtp_host_the_mail_is_logged(
    bus: MessageBus, caplog: pytest.LogCaptureFixture
) -> None:
    assert bus.deps.settings.smtp_host is None
    sale = await event_on_sale(bus, totals=(10,), title="Quiet Evening")
    buyer = await account(bus)
    held = await bus.handle(
        cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),))
    )
    await bus.handle(cmd.CancelBooking(buyer.actor, held.id))
    consumer = await EmailConsumer.of(bus)
    with caplog.at_level(logging.INFO, logger="ticketflow.adapters.mailer"):
        while await consume_once(consumer.source, consumer.consumer):
            pass
    [logged] = [r.getMessage() for r in caplog.records if r.name == "ticketflow.adapters.mailer"]
    assert buyer.email in logged and "Booking cancelled: Quiet Evening" in logged
    assert str(held.id) in logged  # the text too, in development


async def test_the_app_runs_the_email_consumer_by_itself(
    sqlite_url: str, clock: ManualClock, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = smtp_server.settings(
        settings_for(sqlite_url), run_consumers=True, consumer_idle_seconds=0.01
    )
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        bus = app_bus(client)
        sale = await event_on_sale(bus, totals=(10,), title="Started By Itself")
        await paid_booking(bus, await account(bus), sale, quantity=1)
        subject = "Your tickets for Started By Itself"
        deadline = time.monotonic() + 10
        while subject not in {mail["Subject"] for mail in smtp_server.mailbox.messages}:
            assert time.monotonic() < deadline, "the app's consumer sent no tickets"
            await asyncio.sleep(0.01)  # polling backoff: the app's own task does the work
