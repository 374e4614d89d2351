"""The buyer's mails as a mail client reads them (parsed with the standard library's modern
policy): headers that are not ASCII arrive intact, and every part is where clients look."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import UUID

import pytest

from ticketflow.adapters.mailer import LoggingMailer
from ticketflow.services.ticket_email_messages import (
    BookingFacts,
    Envelope,
    TicketFacts,
    cancelled_message,
    tickets_message,
)

BOOKING = BookingFacts(
    booking_id=UUID("01a24ad5-9ba1-733f-b664-c10710d218b8"),
    recipient="buyer@example.com",
    event_title="Ça va 🎷 — a concert whose title is longer than one header line may hold",
    venue="Salle <Pleyel> & co",
    starts_at=datetime(2027, 3, 1, 20, 0, tzinfo=UTC),
    currency="EUR",
    total_minor=12_050,
)
ENVELOPE = Envelope("Billetterie Élysée <tickets@ticketflow.example>", BOOKING.starts_at, "<m@t>")
TICKETS = [TicketFacts("TF-AAAA", "Fosse"), TicketFacts("TF-BBBB", "Balcon ö")]


def _received(message: object) -> EmailMessage:
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)  # type: ignore[attr-defined]
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_tickets_mail_reads_back_whole() -> None:
    mail = _received(tickets_message(BOOKING, TICKETS, ENVELOPE))

    assert mail["Subject"] == f"Your tickets for {BOOKING.event_title}"
    assert mail["From"].addresses[0].display_name == "Billetterie Élysée"
    assert mail["From"].addresses[0].addr_spec == "tickets@ticketflow.example"
    assert mail["To"] == "buyer@example.com"
    assert mail["Message-ID"] == "<m@t>"
    assert [part.get_content_type() for part in mail.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "image/png",
    ]
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "- Balcon ö: TF-BBBB" in text.get_content() and "120.50 EUR" in text.get_content()
    assert "Salle &lt;Pleyel&gt; &amp; co" in html.get_content()
    images = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    for index, image in enumerate(images):
        assert image.get_content_disposition() == "inline"
        assert image.get_filename() == f"ticket-{index + 1}.png"
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html.get_content()
        assert image.get_content().startswith(b"\x89PNG")


def test_a_plain_mail_keeps_its_ascii_headers_as_written() -> None:
    booking = BookingFacts(**{**BOOKING.__dict__, "event_title": "Quiet\nEvening"})
    sender = Envelope("TicketFlow <tickets@ticketflow.example>", BOOKING.starts_at, "<c@t>")
    message = cancelled_message(booking, "cancelled_by_user", sender)
    assert message["Subject"] == "Booking cancelled: Quiet Evening"  # no line break in a header
    assert message["From"] == "TicketFlow <tickets@ticketflow.example>"
    mail = _received(message)
    text = mail.get_body(("plain",))
    assert text is not None and "was cancelled as you asked" in text.get_content()


async def test_without_smtp_the_log_shows_the_subject_and_text_as_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="ticketflow.adapters.mailer"):
        await LoggingMailer(with_text=True).send(tickets_message(BOOKING, TICKETS, ENVELOPE))
    [logged] = [r.getMessage() for r in caplog.records if r.name == "ticketflow.adapters.mailer"]
    assert f"subject='Your tickets for {BOOKING.event_title}'" in logged
    assert "- Balcon ö: TF-BBBB" in logged
