"""Domain events: past-tense facts, appended to the event store with the change they record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

if TYPE_CHECKING:
    from ticketflow.domain.model import Booking, BookingLine


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """One fact about one stream (an aggregate); `version` orders the stream's facts."""

    type: ClassVar[str]
    stream_type: ClassVar[str]
    stream_id: UUID
    version: int

    def data(self) -> dict[str, Any]:
        return {
            f.name: _jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("stream_id", "version")
        }


def lines_data(lines: Iterable[BookingLine]) -> list[dict[str, Any]]:
    return [
        {
            "ticket_type_id": str(line.ticket_type_id),
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
        }
        for line in lines
    ]


@dataclass(frozen=True, kw_only=True)
class UserRegistered(DomainEvent):
    type, stream_type = "user.registered", "user"
    email: str
    role: str


@dataclass(frozen=True, kw_only=True)
class UserRoleChanged(DomainEvent):
    type, stream_type = "user.role_changed", "user"
    role: str


@dataclass(frozen=True, kw_only=True)
class UserDisabled(DomainEvent):
    """Signing in and refreshing are refused; every session ended with it."""

    type, stream_type = "user.disabled", "user"


@dataclass(frozen=True, kw_only=True)
class UserEnabled(DomainEvent):
    type, stream_type = "user.enabled", "user"


@dataclass(frozen=True, kw_only=True)
class UserPasswordChanged(DomainEvent):
    """`reason`: "changed" (signed in, knowing the old one) or "reset" (an e-mailed token)."""

    type, stream_type = "user.password_changed", "user"
    reason: str


@dataclass(frozen=True, kw_only=True)
class PasswordResetRequested(DomainEvent):
    """A reset link is to be mailed to the user. The token is not here: it is a MAC of the
    stream id that only the mailer and the confirmation recompute (adapters/security.py)."""

    type, stream_type = "auth.password_reset_requested", "password_reset"
    user_id: UUID
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class PasswordResetSpent(DomainEvent):
    """`reason`: "used" to set a new password, or "password_changed" since it was mailed."""

    type, stream_type = "auth.password_reset_spent", "password_reset"
    reason: str


@dataclass(frozen=True, kw_only=True)
class SessionStarted(DomainEvent):
    type, stream_type = "auth.session_started", "session"
    user_id: UUID


@dataclass(frozen=True, kw_only=True)
class SessionRefreshed(DomainEvent):
    type, stream_type = "auth.session_refreshed", "session"


@dataclass(frozen=True, kw_only=True)
class SessionEnded(DomainEvent):
    """`reason`: logout, logout_all, refresh_token_reuse (a spent refresh token came back),
    password_changed, password_reset, role_changed or account_disabled."""

    type, stream_type = "auth.session_ended", "session"
    reason: str


@dataclass(frozen=True, kw_only=True)
class EventCreated(DomainEvent):
    type, stream_type = "event.created", "event"
    organizer_id: UUID
    title: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    sales_start: datetime | None
    sales_end: datetime | None
    max_tickets_per_buyer: int | None = None  # absent from events stored before caps existed
    refund_deadline: datetime | None = None
    waiting_room: dict[str, Any] | None = None  # its JSON form (domain/waiting_room.py)


@dataclass(frozen=True, kw_only=True)
class EventUpdated(DomainEvent):
    type, stream_type = "event.updated", "event"
    changes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class EventPublished(DomainEvent):
    type, stream_type = "event.published", "event"


@dataclass(frozen=True, kw_only=True)
class EventCancelled(DomainEvent):
    type, stream_type = "event.cancelled", "event"


@dataclass(frozen=True, kw_only=True)
class TicketTypeAdded(DomainEvent):
    type, stream_type = "ticket_type.added", "ticket_type"
    event_id: UUID
    name: str
    price_minor: int
    currency: str
    total: int
    max_per_booking: int
    max_per_buyer: int | None = None


@dataclass(frozen=True, kw_only=True)
class TicketTypeUpdated(DomainEvent):
    type, stream_type = "ticket_type.updated", "ticket_type"
    changes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class TicketsHeld(DomainEvent):
    """A booking was created: its tickets are held until `hold_expires_at`."""

    type, stream_type = "booking.held", "booking"
    user_id: UUID
    event_id: UUID
    currency: str
    total_minor: int
    hold_expires_at: datetime
    lines: list[dict[str, Any]]
    created_at: datetime  # when the buyer asked; a batched hold commits a moment later

    @classmethod
    def of(cls, booking: Booking) -> TicketsHeld:
        return cls(
            stream_id=booking.id,
            version=booking.version,
            user_id=booking.user_id,
            event_id=booking.event_id,
            currency=booking.currency,
            total_minor=booking.total_minor,
            hold_expires_at=booking.hold_expires_at,
            lines=lines_data(booking.lines),
            created_at=booking.created_at,
        )


@dataclass(frozen=True, kw_only=True)
class BookingCancelled(DomainEvent):
    type, stream_type = "booking.cancelled", "booking"
    reason: str
    lines: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class HoldExpired(DomainEvent):
    type, stream_type = "booking.expired", "booking"
    lines: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class BookingConfirmed(DomainEvent):
    """Paid: the booking's tickets (one per seat) were issued in the same transaction."""

    type, stream_type = "booking.confirmed", "booking"
    payment_id: UUID
    ticket_ids: list[str]
    lines: list[dict[str, Any]]  # what was sold, for the sales read model


@dataclass(frozen=True, kw_only=True)
class BookingRefunded(DomainEvent):
    """A confirmed booking was refunded: its tickets are void and back on sale."""

    type, stream_type = "booking.refunded", "booking"
    lines: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class PaymentStarted(DomainEvent):
    type, stream_type = "payment.started", "payment"
    booking_id: UUID
    amount_minor: int
    currency: str
    payment_method: str


@dataclass(frozen=True, kw_only=True)
class PaymentSucceeded(DomainEvent):
    type, stream_type = "payment.succeeded", "payment"
    provider_ref: str


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(DomainEvent):
    type, stream_type = "payment.failed", "payment"
    reason: str


@dataclass(frozen=True, kw_only=True)
class RefundRequested(DomainEvent):
    type, stream_type = "payment.refund_requested", "payment"
    reason: str


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(DomainEvent):
    type, stream_type = "payment.refunded", "payment"
    refund_ref: str
    amount_minor: int


@dataclass(frozen=True, kw_only=True)
class TicketCheckedIn(DomainEvent):
    """A ticket was admitted at the door: the first (so far only) fact of a ticket's stream,
    whose issue is recorded on its booking's (BookingConfirmed)."""

    type, stream_type = "ticket.checked_in", "ticket"
    event_id: UUID
    booking_id: UUID
    ticket_type_id: UUID
    admitted_at: datetime


@dataclass(frozen=True, kw_only=True)
class WebhookRegistered(DomainEvent):
    """An organizer's endpoint will receive these event types. Its signing secret is not here,
    nor its full URL: a path or query often carries a receiver's token (Slack's, Discord's), so
    only the origin (scheme, host, port) is; the endpoint, `stream_id`, holds the rest."""

    type, stream_type = "webhook.registered", "webhook"
    owner_id: UUID
    origin: str
    event_types: list[str]


@dataclass(frozen=True, kw_only=True)
class WebhookDeleted(DomainEvent):
    """The endpoint's last fact (version 2): disabled for good, its pending deliveries given up."""

    type, stream_type = "webhook.deleted", "webhook"
