"""Sending e-mail: over SMTP (aiosmtplib) when a host is configured, else into the log."""

from __future__ import annotations

import logging
from email.message import Message
from typing import Protocol

import aiosmtplib

from ticketflow.config import Settings

log = logging.getLogger(__name__)


class Undeliverable(Exception):
    """The server refused every recipient for good (5xx): sending again would not help."""


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Hand `message` over for delivery; raise Undeliverable on a permanent refusal, any
        other error when a retry may succeed (server down, timeout, 4xx)."""
        ...


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self._settings = settings

    async def send(self, message: Message) -> None:
        settings = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(refused.code >= 500 for refused in error.recipients):
                raise Undeliverable(str(error)) from error
            raise


class LoggingMailer:
    """No SMTP host configured: the message goes to the log instead, its text too when
    `with_text` (in development; elsewhere the ticket codes in it stay out of the logs)."""

    def __init__(self, with_text: bool) -> None:
        self._with_text = with_text

    async def send(self, message: Message) -> None:
        log.info(
            "e-mail not sent (TICKETFLOW_SMTP_HOST unset) to=%s subject=%r\n%s",
            message["To"],
            str(message["Subject"]),  # a Header, if it is not ASCII
            _plain_text(message) if self._with_text else "",
        )


def _plain_text(message: Message) -> str:
    """The message's plain text part, decoded ("" if it has none)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def mailer_for(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return LoggingMailer(with_text=settings.environment == "development")
