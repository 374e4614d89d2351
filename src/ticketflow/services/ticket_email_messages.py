"""The buyer's e-mails as MIME messages: tickets with one inline QR code each, cancellation,
refund. Plain text for every client, HTML beside it; nothing here sends or reads anything.

Built with the `email.mime` classes, not `EmailMessage`: the modern API parses every header it
is given (each part's too) and made a two-ticket mail cost 5.4 ms of CPU before its QR codes,
against 1.4 ms here (bench/README.md), on every paid booking. What it did for us, encoding
what is not ASCII in a header, `_header` does."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from html import escape
from typing import cast
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
) -> Message:
    """multipart/alternative: the text, then multipart/related holding the HTML and its images
    (clients show the last alternative they can, so the HTML with its codes where they can)."""
    lines = [f"- {ticket.ticket_type_name}: {ticket.code}" for ticket in tickets]
    text = (
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
    html = _html(
        booking,
        f"<p>Thank you for your booking. Show one code per person at the door.</p>"
        f"<ol>{items}</ol>"
        f"<p>Paid: {escape(_money(booking.total_minor, booking.currency))}</p>",
    )
    related = MIMEMultipart("related", _subparts=[text_part(html, "html")])
    for index, (ticket, cid) in enumerate(zip(tickets, cids, strict=True)):
        image = MIMEImage(qr_png(ticket.code), "png")
        image["Content-ID"] = f"<{cid}>"
        image.add_header("Content-Disposition", "inline", filename=f"ticket-{index + 1}.png")
        related.attach(image)
    message = MIMEMultipart("alternative", _subparts=[text_part(text, "plain"), related])
    return addressed(
        message, booking.recipient, envelope, f"Your tickets for {booking.event_title}"
    )


def cancelled_message(booking: BookingFacts, reason: str, envelope: Envelope) -> Message:
    why = _CANCEL_REASONS.get(reason, "")
    text = f"Your booking {booking.booking_id} was cancelled {why}; nothing was charged."
    return _simple(booking, envelope, f"Booking cancelled: {booking.event_title}", text)


def refunded_message(booking: BookingFacts, envelope: Envelope) -> Message:
    text = (
        f"Your booking {booking.booking_id} was refunded: "
        f"{_money(booking.total_minor, booking.currency)} will be returned to your card. "
        "Its tickets are no longer valid."
    )
    return _simple(booking, envelope, f"Booking refunded: {booking.event_title}", text)


def addressed(message: Message, recipient: str, envelope: Envelope, subject: str) -> Message:
    """`message` with its headers: every mail of ours is sent this way."""
    message["From"] = _address(envelope.sender)
    message["To"] = recipient
    # A title's line breaks can't go in a header.
    message["Subject"] = _header(" ".join(subject.split()))
    message["Date"] = format_datetime(envelope.sent_at)
    message["Message-ID"] = envelope.message_id
    return message


def _simple(booking: BookingFacts, envelope: Envelope, subject: str, text: str) -> Message:
    message = MIMEMultipart(
        "alternative",
        _subparts=[
            text_part(f"{text}\n\n{_when_where(booking)}\n", "plain"),
            text_part(_html(booking, f"<p>{escape(text)}</p>"), "html"),
        ],
    )
    return addressed(message, booking.recipient, envelope, subject)


def text_part(text: str, subtype: str) -> MIMEText:
    """A text part, UTF-8 whatever it holds (organizers' titles and venues are anyone's)."""
    return MIMEText(text, subtype, "utf-8")


def _header(value: str) -> str:
    """A header's value, encoded (RFC 2047) if it is not ASCII. A Header, not its encoded
    text: folded by the generator, which knows where the header's name ends (typeshed types
    the value as str; the `email.mime` classes take either)."""
    return value if value.isascii() else cast(str, Header(value, "utf-8"))


def _address(value: str) -> str:
    """An address as given, its display name encoded if that is not ASCII."""
    name, address = parseaddr(value)
    if name.isascii() or not address:
        return value
    return formataddr((name, address), charset="utf-8")


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
