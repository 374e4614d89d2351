"""The password reset e-mail: the token (recomputed from the reset's id, never stored) and how
long it works. Sent by the "email" consumer (services/ticket_emails.py), like the buyers' mail."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.security import Tokens
from ticketflow.adapters.tables import users
from ticketflow.services.ticket_email_messages import Envelope


async def password_reset_message(
    connection: AsyncConnection, event: StoredEvent, tokens: Tokens, envelope: Envelope
) -> EmailMessage | None:
    """The mail for a `PasswordResetRequested` event; None if its user is gone."""
    recipient = await connection.scalar(
        select(users.c.email).where(users.c.id == UUID(event.data["user_id"]))
    )
    if recipient is None:
        return None
    token = tokens.password_reset_token(event.stream_id)
    expires_at = datetime.fromisoformat(event.data["expires_at"])
    message = EmailMessage()
    message["From"] = envelope.sender
    message["To"] = recipient
    message["Subject"] = "Reset your TicketFlow password"
    message["Date"] = format_datetime(envelope.sent_at)
    message["Message-ID"] = envelope.message_id
    message.set_content(
        "Someone, hopefully you, asked to reset the password of your TicketFlow account.\n\n"
        f"Your reset token (it works once, until {expires_at:%d %B %Y, %H:%M UTC}):\n\n"
        f"{token}\n\n"
        "Send it with a new password to POST /api/v1/auth/password-reset/confirm. Every "
        "session of your account then ends.\n"
        "If you did not ask, ignore this mail: your password stays as it is.\n"
    )
    return message
