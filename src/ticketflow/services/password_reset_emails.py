"""The password reset e-mail: a link to the web page that sets the new password, carrying the
token (recomputed from the reset's id, never stored), and how long it works. Sent by the
"email" consumer (services/ticket_emails.py), like the buyers' mail."""

from __future__ import annotations

from datetime import datetime
from email.message import Message
from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.event_store import StoredEvent
from ticketflow.adapters.security import Tokens
from ticketflow.adapters.tables import users
from ticketflow.services.ticket_email_messages import Envelope, addressed, text_part


async def password_reset_message(
    connection: AsyncConnection,
    event: StoredEvent,
    tokens: Tokens,
    envelope: Envelope,
    public_url: str,
) -> Message | None:
    """The mail for a `PasswordResetRequested` event; None if its user is gone. Its link opens
    web/accounts.py's page on `public_url` (the setting), the token filled in."""
    recipient = await connection.scalar(
        select(users.c.email).where(users.c.id == UUID(event.data["user_id"]))
    )
    if recipient is None:
        return None
    token = tokens.password_reset_token(event.stream_id)
    link = f"{public_url.rstrip('/')}/password-reset/confirm?{urlencode({'token': token})}"
    expires_at = datetime.fromisoformat(event.data["expires_at"])
    text = (
        "Someone, hopefully you, asked to reset the password of your TicketFlow account.\n\n"
        f"Choose a new password here (the link works once, until "
        f"{expires_at:%d %B %Y, %H:%M UTC}):\n\n"
        f"{link}\n\n"
        "Every session of your account then ends. An API client sends this token with the "
        "new password to POST /api/v1/auth/password-reset/confirm instead:\n\n"
        f"{token}\n\n"
        "If you did not ask, ignore this mail: your password stays as it is.\n"
    )
    return addressed(
        text_part(text, "plain"), recipient, envelope, "Reset your TicketFlow password"
    )
