"""Request and response bodies of the REST API; writes reject unknown fields."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ticketflow.domain import passwords
from ticketflow.domain.model import Booking, BookingStatus, EventStatus, Role, TicketType
from ticketflow.domain.payment import PaymentStatus

# The constraints are checked on the text as sent, as the schema states them: no NUL (PostgreSQL
# can't store it), and a title holds something besides blanks. Only then is it stripped.
NO_NUL = r"^[^\x00]*$"
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$"),
    AfterValidator(str.strip),
]
Description = Annotated[str, StringConstraints(max_length=5000, pattern=NO_NUL)]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z]{3}$"),
    AfterValidator(str.upper),
    Field(description="ISO 4217 code, e.g. EUR"),
]


def _json_number(value: object) -> object:
    """An integer is a JSON number (10 or 10.0, as JSON Schema has it), not a string of digits
    nor a boolean, which pydantic's lax mode would turn into one."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON number")
    return value


JsonNumber = BeforeValidator(_json_number)
PriceMinor = Annotated[
    int, Field(ge=0, le=10**12, description="Price in minor units (cents)"), JsonNumber
]
Total = Annotated[int, Field(ge=0, le=10_000_000), JsonNumber]
MaxPerBooking = Annotated[int, Field(ge=1, le=100), JsonNumber]
BuyerCap = Annotated[int, Field(ge=1, le=10_000_000), JsonNumber]
Quantity = Annotated[int, Field(ge=1, le=100), JsonNumber]


RFC_3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")


def _date_time_text(value: object) -> object:
    """JSON has no date type: only an RFC 3339 string is one. Pydantic would otherwise read a
    number (or a string of digits) as seconds since 1970, which `format: date-time` excludes."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC_3339_START.match(value):
        raise ValueError("must be an RFC 3339 date-time string with an offset")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]
# A new password: its length here (so the schema states it), the rest of the policy in the domain.
Password = Annotated[
    str,
    StringConstraints(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH),
    Field(description="10 to 128 characters, not one of the 10,000 most common passwords"),
]


class Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _null_only_where_allowed(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The documented twin of `Patch._no_null`: a field may be left out, but may be null only
    if the model lists it in `nullable_fields`."""
    nullable: frozenset[str] = getattr(model, "nullable_fields", frozenset())
    for name, field_schema in schema.get("properties", {}).items():
        if name in nullable or "anyOf" not in field_schema:
            continue
        variants = [v for v in field_schema.pop("anyOf") if v != {"type": "null"}]
        field_schema.update(variants[0] if len(variants) == 1 else {"anyOf": variants})
        field_schema.pop("default", None)


class Patch(Write):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_where_allowed)
    nullable_fields: ClassVar[frozenset[str]] = frozenset()

    # A field validator, not a model one, so the 422 names the field rather than "body".
    @field_validator("*")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable_fields:
            raise ValueError(f"'{info.field_name}' cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class Credentials(Write):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Registration(Write):
    email: EmailStr
    password: Password


class RefreshTokenIn(Write):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class PasswordChange(Write):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    new_password: Password


class PasswordResetRequest(Write):
    email: EmailStr


class PasswordResetAccepted(BaseModel):
    """The one answer to every reset request, whether or not the account exists."""

    detail: str


class PasswordResetConfirmation(Write):
    token: Annotated[
        str, StringConstraints(min_length=1, max_length=256), Field(description="From the e-mail")
    ]
    new_password: Password


class UserOut(BaseModel):
    id: UUID
    email: str
    role: Role
    disabled: bool
    created_at: datetime


def _one_field_at_least(schema: dict[str, Any], model: type[BaseModel]) -> None:
    _null_only_where_allowed(schema, model)
    schema["minProperties"] = 1


class UserPatch(Patch):
    """What an admin changes of an account: a role, disabled (true) or enabled again (false)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_field_at_least)

    role: Role | None = None
    disabled: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if not self.model_fields_set:
            raise ValueError("send 'role', 'disabled' or both")
        return self


AdmitPerMinute = Annotated[int, Field(ge=1, le=1_000_000), JsonNumber]
SessionMinutes = Annotated[int, Field(ge=1, le=120), JsonNumber]


class WaitingRoomIn(Write):
    """An event's waiting room (sent whole: what is left out takes its default)."""

    enabled: bool = True
    opens_at: Timestamp | None = Field(
        None,
        description="When the pre-queue opens (null: once published). Everyone who joins "
        "before the sale opens (`sales_start`) is placed by a uniform shuffle at the opening; "
        "later joiners follow in order of arrival.",
    )
    admit_per_minute: AdmitPerMinute | Literal["auto"] = Field(
        "auto",
        description='Buyers admitted per minute; "auto": a fraction (default 75%) of the holds '
        "per second the booking engine serves.",
    )
    session_minutes: SessionMinutes = Field(
        10, description="How long an admission lasts (its token's lifetime)"
    )


class WaitingRoomOut(BaseModel):
    enabled: bool
    opens_at: datetime | None
    admit_per_minute: int | Literal["auto"]
    session_minutes: int


class EventIn(Write):
    title: Title
    description: Description = ""
    venue: Title
    starts_at: Timestamp
    ends_at: Timestamp
    sales_start: Timestamp | None = None
    sales_end: Timestamp | None = None
    max_tickets_per_buyer: BuyerCap | None = Field(
        10,
        description="Tickets one buyer may hold or own of this event (pending and paid, all "
        "types together); null: no cap. Holds beyond it get 409 buyer-limit-reached.",
    )
    refund_deadline: Timestamp | None = Field(
        None,
        description="Until when buyers may refund or cancel their paid bookings themselves "
        "(never after the event starts, nor once a ticket of the booking is checked in); null: "
        "until the start. The organizer and admins may refund at any time.",
    )
    waiting_room: WaitingRoomIn | None = Field(
        None,
        description="While on, POST /bookings for this event needs a `TicketFlow-Admission` "
        "header from POST /events/{id}/queue (403 not-admitted without one).",
    )


class EventPatch(Patch):
    nullable_fields: ClassVar[frozenset[str]] = frozenset(
        {"sales_start", "sales_end", "max_tickets_per_buyer", "refund_deadline", "waiting_room"}
    )

    title: Title | None = None
    description: Description | None = None
    venue: Title | None = None
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    sales_start: Timestamp | None = None
    sales_end: Timestamp | None = None
    max_tickets_per_buyer: BuyerCap | None = None
    refund_deadline: Timestamp | None = None
    waiting_room: WaitingRoomIn | None = None


class TicketTypeIn(Write):
    name: Title
    price_minor: PriceMinor
    currency: Currency
    total: Total
    max_per_booking: MaxPerBooking = 10
    max_per_buyer: BuyerCap | None = Field(
        None,
        description="Tickets of this type one buyer may hold or own (pending and paid); "
        "null: only the event's cap applies.",
    )


class TicketTypePatch(Patch):
    nullable_fields: ClassVar[frozenset[str]] = frozenset({"max_per_buyer"})

    name: Title | None = None
    price_minor: PriceMinor | None = None
    currency: Currency | None = None
    total: Total | None = None
    max_per_booking: MaxPerBooking | None = None
    max_per_buyer: BuyerCap | None = None


class TicketTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    event_id: UUID
    name: str
    price_minor: int
    currency: str
    total: int
    available: int
    max_per_booking: int
    max_per_buyer: int | None

    @classmethod
    def of(cls, ticket_type: TicketType) -> TicketTypeOut:
        return cls.model_validate(ticket_type)


class EventOut(BaseModel):
    id: UUID
    organizer_id: UUID
    title: str
    description: str
    venue: str
    starts_at: datetime
    ends_at: datetime
    sales_start: datetime | None
    sales_end: datetime | None
    max_tickets_per_buyer: int | None
    refund_deadline: datetime | None
    waiting_room: WaitingRoomOut | None = None
    status: EventStatus
    created_at: datetime
    ticket_types: list[TicketTypeOut]


class BookingLineIn(Write):
    ticket_type_id: UUID
    quantity: Quantity


class BookingIn(Write):
    event_id: UUID
    lines: Annotated[list[BookingLineIn], Field(min_length=1, max_length=20)]


class BookingLineOut(BaseModel):
    ticket_type_id: UUID
    quantity: int
    unit_price_minor: int


class BookingOut(BaseModel):
    id: UUID
    user_id: UUID
    event_id: UUID
    status: BookingStatus
    currency: str
    total_minor: int
    hold_expires_at: datetime
    created_at: datetime
    updated_at: datetime
    lines: list[BookingLineOut]

    @classmethod
    def of(cls, booking: Booking, updated_at: datetime) -> BookingOut:
        return cls(
            id=booking.id,
            user_id=booking.user_id,
            event_id=booking.event_id,
            status=booking.status,
            currency=booking.currency,
            total_minor=booking.total_minor,
            hold_expires_at=booking.hold_expires_at,
            created_at=booking.created_at,
            updated_at=updated_at,
            lines=[
                BookingLineOut(
                    ticket_type_id=line.ticket_type_id,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                )
                # The order GET /bookings/{id} reads them in, so both answers agree.
                for line in sorted(booking.lines, key=lambda line: line.ticket_type_id)
            ],
        )


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class MyBookingLineOut(BookingLineOut):
    ticket_type_name: str | None


class MyBookingOut(BookingOut):
    """A booking as "my bookings" lists it (from its read model), with its ticket details."""

    event_title: str | None
    lines: list[MyBookingLineOut]  # type: ignore[assignment]  # the same lines, with names
    ticket_ids: list[UUID] = Field(description="Issued on payment (see /bookings/{id}/tickets)")


class BookingPage(BaseModel):
    items: list[MyBookingOut]
    next_cursor: str | None


class TicketTypeSalesOut(BaseModel):
    ticket_type_id: UUID
    name: str
    currency: str
    price_minor: int
    total: int
    available: int
    held: int = Field(description="Tickets in pending bookings")
    sold: int = Field(description="Tickets in confirmed bookings")
    revenue_minor: int = Field(description="Paid for confirmed bookings, net of refunds")


class RevenueOut(BaseModel):
    currency: str
    revenue_minor: int


class SalesSummaryOut(BaseModel):
    event_id: UUID
    organizer_id: UUID
    title: str
    status: EventStatus
    sold: int
    held: int
    revenue: list[RevenueOut] = Field(description="Per currency, net of refunds")
    ticket_types: list[TicketTypeSalesOut]


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class ProblemFieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


class PaymentIn(Write):
    payment_method: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=NO_NUL),
        Field(description="The provider's payment method token, e.g. pm_card_visa"),
    ]


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    booking_id: UUID
    amount_minor: int
    currency: str
    payment_method: str
    status: PaymentStatus
    provider_ref: str | None
    failure_reason: str | None
    refund_requested_at: datetime | None


class TicketOut(BaseModel):
    id: UUID
    booking_id: UUID
    ticket_type_id: UUID
    code: str
    issued_at: datetime
    voided_at: datetime | None


class TicketList(BaseModel):
    items: list[TicketOut]


class AuditEventOut(BaseModel):
    seq: int
    stream_type: str
    stream_id: UUID
    version: int
    type: str
    data: dict[str, Any]
    actor_id: UUID | None
    request_id: str | None
    occurred_at: datetime


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class CheckInIn(Write):
    code: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$"),
        Field(description="The ticket's code, as its QR code holds it"),
    ]


class CheckInOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ticket_id: UUID
    event_id: UUID
    booking_id: UUID
    ticket_type_id: UUID
    ticket_type_name: str
    admitted_at: datetime
    admitted_by: UUID
