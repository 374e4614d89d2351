"""Aggregates and their rules: users, events with ticket types, bookings with their lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from ticketflow.domain import events as ev
from ticketflow.domain.errors import (
    BuyerLimitReached,
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotEnoughTickets,
    RefundNotAllowed,
    SalesClosed,
)
from ticketflow.domain.refund_policy import buyer_refunds_closed
from ticketflow.domain.waiting_room import WaitingRoom


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    USER = "user"


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class BookingStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Actor:
    """Who asks: the authenticated user and their role."""

    user_id: UUID
    role: Role

    def may_manage(self, organizer_id: UUID) -> bool:
        return self.role is Role.ADMIN or (
            self.role is Role.MANAGER and self.user_id == organizer_id
        )

    def may_see_booking(self, buyer_id: UUID, organizer_id: UUID) -> bool:
        """The buyer, the event's organizer and admins; for anyone else it does not exist."""
        return self.user_id == buyer_id or self.may_manage(organizer_id)


@dataclass
class Event:
    id: UUID
    organizer_id: UUID
    title: str
    description: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    sales_start: datetime | None
    sales_end: datetime | None
    status: EventStatus = EventStatus.DRAFT
    version: int = 1
    max_tickets_per_buyer: int | None = None  # pending + confirmed, all types; None: no cap
    refund_deadline: datetime | None = None  # buyers' own refunds end then (and at the start)
    waiting_room: WaitingRoom | None = None  # configured (on or off); None: never configured

    @property
    def room(self) -> WaitingRoom | None:
        """The waiting room, if it is on: then every booking needs an admission from it."""
        return self.waiting_room if self.waiting_room and self.waiting_room.enabled else None

    def check_schedule(self) -> None:
        if self.ends_at <= self.starts_at:
            raise InvalidInput("The event must end after it starts.", field="ends_at")
        if self.sales_start and self.sales_end and self.sales_end <= self.sales_start:
            raise InvalidInput("Sales must end after they start.", field="sales_end")
        if self.sales_end and self.sales_end > self.ends_at:
            raise InvalidInput("Sales cannot end after the event ends.", field="sales_end")
        if self.refund_deadline and self.refund_deadline > self.starts_at:
            raise InvalidInput(
                "The refund deadline cannot be after the event starts (refunds end then anyway).",
                field="refund_deadline",
            )
        if self.max_tickets_per_buyer is not None and self.max_tickets_per_buyer < 1:
            raise InvalidInput(
                "A buyer cap is at least one ticket (null: no cap).", field="max_tickets_per_buyer"
            )
        if self.waiting_room is not None:
            self.waiting_room.check_rules(self.sales_start)

    def update(self, changes: dict[str, object]) -> ev.EventUpdated:
        if self.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
            raise InvalidTransition(f"A {self.status} event cannot be changed.")
        room = changes.get("waiting_room")
        if isinstance(room, Mapping):
            room = WaitingRoom.of(room)
            # Recorded in its JSON form, with the defaults it got: the audit trail says it all.
            changes = {**changes, "waiting_room": room.data()}
        for name, value in changes.items():
            setattr(self, name, room if name == "waiting_room" else value)
        self.check_schedule()
        self.version += 1
        return ev.EventUpdated(stream_id=self.id, version=self.version, changes=changes)

    def publish(self) -> ev.EventPublished:
        if self.status is not EventStatus.DRAFT:
            raise InvalidTransition(f"Only a draft can be published; this event is {self.status}.")
        self.status = EventStatus.PUBLISHED
        self.version += 1
        return ev.EventPublished(stream_id=self.id, version=self.version)

    def cancel(self) -> ev.EventCancelled:
        if self.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
            raise InvalidTransition(f"The event is already {self.status}.")
        self.status = EventStatus.CANCELLED
        self.version += 1
        return ev.EventCancelled(stream_id=self.id, version=self.version)

    def accepts_ticket_types(self) -> None:
        if self.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
            raise InvalidTransition(f"Ticket types of a {self.status} event cannot change.")

    def check_on_sale(self, now: datetime) -> None:
        """Raise unless buyers may hold tickets of this event at `now`."""
        if self.status is not EventStatus.PUBLISHED:
            raise SalesClosed(f"The event is {self.status}; tickets are not on sale.")
        if self.sales_start and now < self.sales_start:
            raise SalesClosed(f"Sales open at {self.sales_start.isoformat()}.")
        closes = self.sales_end or self.starts_at
        if now >= closes:
            raise SalesClosed(f"Sales closed at {closes.isoformat()}.")

    def room_to_join(self, now: datetime) -> WaitingRoom:
        """The waiting room a buyer may join at `now`: on, its pre-queue open, the sale not
        over (drafts are not found before asking this)."""
        if self.room is None:
            raise Conflict("This event has no waiting room on: book directly.")
        if self.status is not EventStatus.PUBLISHED:
            raise SalesClosed(f"The event is {self.status}; tickets are not on sale.")
        if now >= (closes := self.sales_end or self.starts_at):
            raise SalesClosed(f"Sales closed at {closes.isoformat()}.")
        self.room.check_joinable(now)
        return self.room

    @property
    def caps_buyers(self) -> bool:
        """Whether holds of this event must count what the buyer has already (see
        `check_buyer_limits`); the ticket types' own caps are asked too."""
        return self.max_tickets_per_buyer is not None

    def check_buyer_limits(
        self, wanted: list[tuple[TicketType, int]], held: Mapping[UUID, int]
    ) -> None:
        """Raise unless a buyer who already holds or owns `held` (tickets per ticket type,
        pending and confirmed) may hold `wanted` too: the event's cap over all its types and
        each type's own cap. The refusal says how many are left to them."""
        refusals: list[tuple[int, int, str]] = []  # (left, cap, of what)
        if self.max_tickets_per_buyer is not None:
            have = sum(held.values())
            asked = sum(quantity for _, quantity in wanted)
            if have + asked > self.max_tickets_per_buyer:
                left = max(0, self.max_tickets_per_buyer - have)
                refusals.append((left, self.max_tickets_per_buyer, "this event"))
        for ticket_type, quantity in wanted:
            cap = ticket_type.max_per_buyer
            have = held.get(ticket_type.id, 0)
            if cap is not None and have + quantity > cap:
                refusals.append((max(0, cap - have), cap, f"'{ticket_type.name}'"))
        if refusals:
            left, cap, of_what = min(refusals)
            more = f"you may hold {left} more" if left else "you have reached it"
            raise BuyerLimitReached(
                f"Each buyer may hold or buy at most {cap} tickets of {of_what}; {more}.",
                remaining=left,
            )

    def check_buyer_may_refund(self, now: datetime, checked_in: bool) -> None:
        """Raise unless the buyer themselves may still refund (or cancel) a paid booking of
        this event (domain/refund_policy.py); its organizer and admins decide for themselves."""
        closed = buyer_refunds_closed(
            now,
            starts_at=self.starts_at,
            refund_deadline=self.refund_deadline,
            checked_in=checked_in,
        )
        if closed is not None:
            raise RefundNotAllowed(closed.explanation())


@dataclass
class TicketType:
    id: UUID
    event_id: UUID
    name: str
    price_minor: int
    currency: str
    total: int
    available: int
    max_per_booking: int
    version: int = 1
    max_per_buyer: int | None = None  # pending + confirmed of this type; None: no cap of its own

    def check_rules(self) -> None:
        if self.price_minor < 0:
            raise InvalidInput("The price cannot be negative.", field="price_minor")
        if self.total < 0:
            raise InvalidInput("The total cannot be negative.", field="total")
        if self.max_per_booking < 1:
            raise InvalidInput("At least one ticket per booking.", field="max_per_booking")
        if self.max_per_buyer is not None and self.max_per_buyer < 1:
            raise InvalidInput("A buyer cap is at least one ticket.", field="max_per_buyer")

    def update(self, changes: dict[str, object]) -> ev.TicketTypeUpdated:
        """Apply changes; a new total moves `available` by the same delta (storage re-checks)."""
        new_total = changes.get("total")
        if isinstance(new_total, int):
            held_or_sold = self.total - self.available
            if new_total < held_or_sold:
                raise InvalidTransition(
                    f"The total cannot go below the {held_or_sold} tickets already held or sold."
                )
            self.available += new_total - self.total
        for name, value in changes.items():
            setattr(self, name, value)
        self.check_rules()
        self.version += 1
        return ev.TicketTypeUpdated(stream_id=self.id, version=self.version, changes=changes)

    def too_few_left(self, quantity: int) -> NotEnoughTickets:
        """The refusal of a hold of `quantity` when fewer are left."""
        return NotEnoughTickets(
            f"Not enough '{self.name}' tickets left for {quantity}.", field="quantity"
        )

    def check_quantity(self, quantity: int) -> None:
        # A rule, not left to storage: there a negative quantity makes the decrement add tickets
        # and only the booking lines' CHECK stops the hold, as an IntegrityError, not a refusal.
        if quantity < 1:
            raise InvalidInput("Hold at least one ticket per line.", field="quantity")
        if quantity > self.max_per_booking:
            raise InvalidInput(
                f"At most {self.max_per_booking} '{self.name}' tickets per booking.",
                field="quantity",
            )


@dataclass(frozen=True)
class BookingLine:
    ticket_type_id: UUID
    quantity: int
    unit_price_minor: int

    @property
    def amount_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass
class Booking:
    id: UUID
    user_id: UUID
    event_id: UUID
    currency: str
    hold_expires_at: datetime
    created_at: datetime
    lines: list[BookingLine] = field(default_factory=list)
    status: BookingStatus = BookingStatus.PENDING
    version: int = 1

    @property
    def total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    @classmethod
    def hold(
        cls,
        *,
        booking_id: UUID,
        user_id: UUID,
        event: Event,
        wanted: list[tuple[TicketType, int]],
        now: datetime,
        hold_ttl: timedelta,
    ) -> Booking:
        """A new pending booking for `wanted`; storage must still take the tickets (and record
        `TicketsHeld.of` it, with the price it was held at)."""
        event.check_on_sale(now)
        currencies = {ticket_type.currency for ticket_type, _ in wanted}
        if len(currencies) != 1:
            raise InvalidInput("All tickets of one booking must share a currency.", field="lines")
        for ticket_type, quantity in wanted:
            ticket_type.check_quantity(quantity)
        booking = cls(
            id=booking_id,
            user_id=user_id,
            event_id=event.id,
            currency=currencies.pop(),
            hold_expires_at=now + hold_ttl,
            created_at=now,
            lines=[BookingLine(tt.id, quantity, tt.price_minor) for tt, quantity in wanted],
        )
        return booking

    def priced(self, ticket_type: TicketType) -> Booking:
        """This one-line hold at `ticket_type`'s price and currency as they are now (a batch
        prices its holds from the row it read, not from the copy they were checked against)."""
        (line,) = self.lines
        return replace(
            self,
            currency=ticket_type.currency,
            lines=[BookingLine(ticket_type.id, line.quantity, ticket_type.price_minor)],
        )

    def _leave_pending(self, to: BookingStatus) -> None:
        if self.status is not BookingStatus.PENDING:
            raise InvalidTransition(f"The booking is {self.status}, not pending.")
        self.status = to
        self.version += 1

    def cancel(self, reason: str) -> ev.BookingCancelled:
        self._leave_pending(BookingStatus.CANCELLED)
        return ev.BookingCancelled(
            stream_id=self.id, version=self.version, reason=reason, lines=ev.lines_data(self.lines)
        )

    def confirm(self, payment_id: UUID, ticket_ids: list[UUID]) -> ev.BookingConfirmed:
        """Paid: called in the transaction that issues `ticket_ids`, one per seat."""
        self._leave_pending(BookingStatus.CONFIRMED)
        return ev.BookingConfirmed(
            stream_id=self.id,
            version=self.version,
            payment_id=payment_id,
            ticket_ids=[str(ticket_id) for ticket_id in ticket_ids],
            lines=ev.lines_data(self.lines),
        )

    def refund(self) -> ev.BookingRefunded:
        if self.status is not BookingStatus.CONFIRMED:
            raise InvalidTransition(
                f"Only a confirmed booking can be refunded; this is {self.status}."
            )
        self.status = BookingStatus.REFUNDED
        self.version += 1
        return ev.BookingRefunded(
            stream_id=self.id, version=self.version, lines=ev.lines_data(self.lines)
        )


@dataclass
class User:
    """An account. Its password hash is not held here: only the accounts service reads it."""

    id: UUID
    email: str
    role: Role
    version: int = 1
    disabled_at: datetime | None = None  # a disabled account can't sign in or refresh

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def change_role(self, role: Role) -> ev.UserRoleChanged:
        self.role = role
        self.version += 1
        return ev.UserRoleChanged(stream_id=self.id, version=self.version, role=role.value)

    def disable(self, now: datetime) -> ev.UserDisabled:
        self.disabled_at = now
        self.version += 1
        return ev.UserDisabled(stream_id=self.id, version=self.version)

    def enable(self) -> ev.UserEnabled:
        self.disabled_at = None
        self.version += 1
        return ev.UserEnabled(stream_id=self.id, version=self.version)

    def change_password(self, reason: str) -> ev.UserPasswordChanged:
        """`reason`: "changed" by the user signed in, or "reset" through an e-mailed token."""
        self.version += 1
        return ev.UserPasswordChanged(stream_id=self.id, version=self.version, reason=reason)
