"""Commands: what a caller asks the system to do, one dataclass per use case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from ticketflow.domain.model import Actor, Role


@dataclass(frozen=True)
class Command:
    pass


@dataclass(frozen=True)
class RegisterUser(Command):
    email: str
    password: str
    role: Role = Role.USER


@dataclass(frozen=True)
class UpdateUser(Command):
    """An admin changes an account's role, or disables or enables it (None: leave as is)."""

    actor: Actor
    user_id: UUID
    role: Role | None = None
    disabled: bool | None = None


@dataclass(frozen=True)
class LogIn(Command):
    email: str
    password: str


@dataclass(frozen=True)
class RefreshSession(Command):
    refresh_token: str


@dataclass(frozen=True)
class LogOut(Command):
    refresh_token: str


@dataclass(frozen=True)
class LogOutEverywhere(Command):
    actor: Actor


@dataclass(frozen=True)
class ChangePassword(Command):
    """The signed-in user sets a new password; their other sessions end, `session_id` stays."""

    actor: Actor
    session_id: UUID
    current_password: str
    new_password: str


@dataclass(frozen=True)
class RequestPasswordReset(Command):
    email: str


@dataclass(frozen=True)
class ResetPassword(Command):
    """Set a new password with the token a reset e-mail carried; every session ends."""

    token: str
    new_password: str


@dataclass(frozen=True)
class CreateEvent(Command):
    actor: Actor
    title: str
    description: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    sales_start: datetime | None = None
    sales_end: datetime | None = None
    max_tickets_per_buyer: int | None = 10  # every door's default: a cap unless told none
    refund_deadline: datetime | None = None
    waiting_room: dict[str, Any] | None = None  # its JSON form (domain/waiting_room.py)


@dataclass(frozen=True)
class UpdateEvent(Command):
    actor: Actor
    event_id: UUID
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishEvent(Command):
    actor: Actor
    event_id: UUID


@dataclass(frozen=True)
class CancelEvent(Command):
    actor: Actor
    event_id: UUID


@dataclass(frozen=True)
class AddTicketType(Command):
    actor: Actor
    event_id: UUID
    name: str
    price_minor: int
    currency: str
    total: int
    max_per_booking: int
    max_per_buyer: int | None = None


@dataclass(frozen=True)
class UpdateTicketType(Command):
    actor: Actor
    ticket_type_id: UUID
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldTickets(Command):
    """Create a booking: hold `lines` of (ticket type id, quantity) on one event."""

    actor: Actor
    event_id: UUID
    lines: tuple[tuple[UUID, int], ...]
    admission: str | None = None  # the TicketFlow-Admission header: needed while a room is on


@dataclass(frozen=True)
class JoinWaitingRoom(Command):
    """Take a place in the event's waiting room (the one the account has, if it has one)."""

    actor: Actor
    event_id: UUID


@dataclass(frozen=True)
class VisitPlace(Command):
    """Look at one's place: its state, and the admission once its turn came. Also the
    heartbeat: a place nobody looks at for a minute is skipped when its turn comes."""

    actor: Actor
    event_id: UUID
    ticket_id: UUID


@dataclass(frozen=True)
class CancelBooking(Command):
    actor: Actor
    booking_id: UUID


@dataclass(frozen=True)
class ReleaseExpiredHolds(Command):
    batch_size: int = 500


@dataclass(frozen=True)
class PayForBooking(Command):
    actor: Actor
    booking_id: UUID
    payment_method: str


@dataclass(frozen=True)
class RefundBooking(Command):
    actor: Actor
    booking_id: UUID


@dataclass(frozen=True)
class ApplyProviderEvent(Command):
    """A verified provider callback: `data` is the charge or refund it reports."""

    event_id: str
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ReconcilePayments(Command):
    batch_size: int = 100


@dataclass(frozen=True)
class CheckInTicket(Command):
    """Admit the ticket with `code` to the event (its organizer or an admin, at the door)."""

    actor: Actor
    event_id: UUID
    code: str


@dataclass(frozen=True)
class RegisterWebhook(Command):
    """A new endpoint of the actor's (an organizer) for deliveries of these event types."""

    actor: Actor
    url: str
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class DeleteWebhook(Command):
    """Disable the endpoint (kept for its delivery log) and give up its pending deliveries."""

    actor: Actor
    webhook_id: UUID
