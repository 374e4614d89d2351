"""The "email" consumer: mails the buyer their tickets once a booking is paid (one QR code per
ticket), a note when a hold is cancelled or a booking refunded, and password reset tokens.

Delivery is at least once. The inbox (services/event_consumers.py) records each event in the
transaction the mail is sent in; if that commit fails after the SMTP server took the message,
the event comes back and the buyer gets the mail twice (same Message-ID). A rare repeat beats a
lost ticket. A recipient the server refuses for good is logged and skipped, not retried forever.
"""

from __future__ import annotations

import logging
from email.message import Message
from email.utils import parseaddr
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.mailer import Mailer, Undeliverable, mailer_for
from ticketflow.adapters.security import Tokens
from ticketflow.adapters.tables import bookings, events, ticket_types, tickets, users
from ticketflow.domain import events as ev
from ticketflow.services.event_consumers import Handler, Interest
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.password_reset_emails import password_reset_message
from ticketflow.services.ticket_email_messages import (
    BookingFacts,
    Envelope,
    TicketFacts,
    cancelled_message,
    refunded_message,
    tickets_message,
)

log = logging.getLogger(__name__)

CONSUMER = "email"  # its consumer group and inbox name: never rename


MAILED = frozenset(
    {
        ev.BookingConfirmed.type,
        ev.BookingCancelled.type,
        ev.BookingRefunded.type,
        ev.PasswordResetRequested.type,
    }
)


def interest_for(_: MessageBus) -> Interest:
    async def interested(event: StoredEvent) -> bool:
        return event.type in MAILED

    return interested


def handler_for(bus: MessageBus) -> Handler:
    settings = bus.deps.settings
    mailer = mailer_for(settings)
    return TicketEmails(
        mailer, bus.deps.clock, settings.mail_from, bus.deps.tokens, settings.public_url
    ).handle


class TicketEmails:
    def __init__(
        self, mailer: Mailer, clock: Clock, sender: str, tokens: Tokens, public_url: str
    ) -> None:
        self._mailer, self._clock, self._sender = mailer, clock, sender
        self._tokens, self._public_url = tokens, public_url

    async def handle(self, connection: AsyncConnection, event: StoredEvent) -> None:
        """Mail what `event` means to its user, reading the rest in the inbox's transaction."""
        if event.type not in MAILED:
            return
        envelope = Envelope(self._sender, self._clock.now(), self._message_id(event))
        if event.type == ev.PasswordResetRequested.type:
            message = await password_reset_message(
                connection, event, self._tokens, envelope, self._public_url
            )
        else:
            message = await _booking_message(connection, event, envelope)
        if message is None:
            return  # gone from the database (never, today): nobody to write to
        try:
            await self._mailer.send(message)
        except Undeliverable:
            log.warning("e-mail %s to %s refused for good: dropped", event.type, message["To"])

    def _message_id(self, event: StoredEvent) -> str:
        domain = parseaddr(self._sender)[1].rpartition("@")[2] or "ticketflow"
        return f"<{event.type}.{event.stream_id}.{event.version}@{domain}>"


async def _booking_message(
    connection: AsyncConnection, event: StoredEvent, envelope: Envelope
) -> Message | None:
    booking = await _booking_facts(connection, event.stream_id)
    if booking is None:
        return None
    if event.type == ev.BookingConfirmed.type:
        ticket_ids = [UUID(ticket_id) for ticket_id in event.data["ticket_ids"]]
        issued = await _tickets(connection, ticket_ids)
        return tickets_message(booking, issued, envelope)
    if event.type == ev.BookingCancelled.type:
        return cancelled_message(booking, str(event.data.get("reason", "")), envelope)
    return refunded_message(booking, envelope)


# Built once: building a statement costs about as much CPU as running it (bench/README.md),
# and every paid booking's mail runs both.
_BOOKING_FACTS = (
    select(
        bookings.c.id.label("booking_id"),
        users.c.email.label("recipient"),
        events.c.title.label("event_title"),
        events.c.venue,
        events.c.starts_at,
        bookings.c.currency,
        bookings.c.total_minor,
    )
    .join(users, users.c.id == bookings.c.user_id)
    .join(events, events.c.id == bookings.c.event_id)
    .where(bookings.c.id == bindparam("booking_id"))
)
_TICKETS = (  # in a stable order: by type, then id
    select(tickets.c.code, ticket_types.c.name.label("ticket_type_name"))
    .join(ticket_types, ticket_types.c.id == tickets.c.ticket_type_id)
    .where(tickets.c.id.in_(bindparam("ticket_ids", expanding=True)))
    .order_by(ticket_types.c.name, tickets.c.id)
)


async def _booking_facts(connection: AsyncConnection, booking_id: UUID) -> BookingFacts | None:
    row = (await connection.execute(_BOOKING_FACTS, {"booking_id": booking_id})).one_or_none()
    return BookingFacts(**row._mapping) if row else None


async def _tickets(connection: AsyncConnection, ticket_ids: list[UUID]) -> list[TicketFacts]:
    """The tickets the confirmation issued."""
    rows = await connection.execute(_TICKETS, {"ticket_ids": ticket_ids})
    return [TicketFacts(**row._mapping) for row in rows]
