"""The buyer's e-mails as MIME messages: tickets with one inline QR code each, cancellation,
refund. Plain text for every client, HTML beside it; nothing here sends or reads anything."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from html import escape
from uuid import UUID

import segno

# Currencies whose minor unit is the major one (ISO 4217 exponent 0) among those likely here.
_NO_DECIMALS = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "HUF"})
_CANCEL_REASONS = {
    "event_cancelled": "because the event was cancelled",
    "cancelled_by_user": "as you asked",
}


@dataclass(frozen=True)
class BookingFacts:
    """What every e-mail about a booking says: to whom, for which event, for how much."""

    booking_id: UUID
    recipient: str
    event_title: str
    venue: str
    starts_at: datetime
    currency: str
    total_minor: int


@dataclass(frozen=True)
class TicketFacts:
    code: str
    ticket_type_name: str


@dataclass(frozen=True)
class Envelope:
    """Sender, when, and a Message-ID fixed by the event mailed (a repeat delivery of one event
    carries the same id, so mail clients can fold the two)."""

    sender: str
    sent_at: datetime
    message_id: str


# One data mask for every code. Choosing the best of the eight (segno's default) scores each
# in Python: 1.8 of the 3.1 ms a ticket's QR cost, on every paid booking's e-mail. Any mask
# decodes; ticket codes are random, so no mask leaves them the large blocks it exists to avoid.
QR_MASK = 0


def qr_png(code: str) -> bytes:
    """A QR code of `code` as PNG (never a Micro QR: few phone scanners read those)."""
    out = io.BytesIO()
    segno.make_qr(code, error="m", mask=QR_MASK).save(out, kind="png", scale=6, border=4)
    return out.getvalue()


def tickets_message(
    booking: BookingFacts, tickets: list[TicketFacts], envelope: Envelope
) -> EmailMessage:
    message = _message(booking, envelope, f"Your tickets for {booking.event_title}")
    lines = [f"- {ticket.ticket_type_name}: {ticket.code}" for ticket in tickets]
    message.set_content(
        f"Thank you for your booking {booking.booking_id}.\n\n{_when_where(booking)}\n\n"
        f"Show one code per person at the door (each QR code holds the code):\n"
        + "\n".join(lines)
        + f"\n\nPaid: {_money(booking.total_minor, booking.currency)}\n"
    )
    cids = [f"ticket-{index}.{booking.booking_id}@ticketflow" for index in range(len(tickets))]
    items = "".join(
        f"<li><p>{escape(ticket.ticket_type_name)}: <code>{escape(ticket.code)}</code></p>"
        f'<img src="cid:{cid}" alt="QR code of ticket {escape(ticket.code)}"></li>'
        for ticket, cid in zip(tickets, cids, strict=True)
    )
    message.add_alternative(
        _html(
            booking,
            f"<p>Thank you for your booking. Show one code per person at the door.</p>"
            f"<ol>{items}</ol>"
            f"<p>Paid: {escape(_money(booking.total_minor, booking.currency))}</p>",
        ),
        subtype="html",
    )
    html_part = message.get_body(("html",))
    assert isinstance(html_part, MIMEPart)
    for index, (ticket, cid) in enumerate(zip(tickets, cids, strict=True)):
        html_part.add_related(
            qr_png(ticket.code),
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            filename=f"ticket-{index + 1}.png",
            disposition="inline",
        )
    return message


def cancelled_message(booking: BookingFacts, reason: str, envelope: Envelope) -> EmailMessage:
    why = _CANCEL_REASONS.get(reason, "")
    text = f"Your booking {booking.booking_id} was cancelled {why}; nothing was charged."
    return _simple(booking, envelope, f"Booking cancelled: {booking.event_title}", text)


def refunded_message(booking: BookingFacts, envelope: Envelope) -> EmailMessage:
    text = (
        f"Your booking {booking.booking_id} was refunded: "
        f"{_money(booking.total_minor, booking.currency)} will be returned to your card. "
        "Its tickets are no longer valid."
    )
    return _simple(booking, envelope, f"Booking refunded: {booking.event_title}", text)


def _message(booking: BookingFacts, envelope: Envelope, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = envelope.sender
    message["To"] = booking.recipient
    message["Subject"] = " ".join(subject.split())  # a title's line breaks can't go in a header
    message["Date"] = format_datetime(envelope.sent_at)
    message["Message-ID"] = envelope.message_id
    return message


def _simple(booking: BookingFacts, envelope: Envelope, subject: str, text: str) -> EmailMessage:
    message = _message(booking, envelope, subject)
    message.set_content(f"{text}\n\n{_when_where(booking)}\n")
    message.add_alternative(_html(booking, f"<p>{escape(text)}</p>"), subtype="html")
    return message


def _when_where(booking: BookingFacts) -> str:
    starts = booking.starts_at.strftime("%A %d %B %Y, %H:%M UTC")
    return f"{booking.event_title}\n{booking.venue}, {starts}"


def _html(booking: BookingFacts, body: str) -> str:
    """Organizers write titles and venues: everything of theirs is escaped."""
    starts = booking.starts_at.strftime("%A %d %B %Y, %H:%M UTC")
    return (
        f"<!doctype html><html><body><h1>{escape(booking.event_title)}</h1>"
        f"<p>{escape(booking.venue)}, {starts}</p>{body}</body></html>"
    )


def _money(amount_minor: int, currency: str) -> str:
    if currency in _NO_DECIMALS:
        return f"{amount_minor} {currency}"
    return f"{amount_minor // 100}.{amount_minor % 100:02d} {currency}"
