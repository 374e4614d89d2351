"""The schema as SQLAlchemy Core tables: the one place that names columns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Seq = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _created_at() -> Column[datetime]:
    return Column("created_at", UTCDateTime(), nullable=False)


users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    _created_at(),
    Column("disabled_at", UTCDateTime()),  # a disabled account can't sign in or refresh
    CheckConstraint("role IN ('admin', 'manager', 'user')", name="role"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("id", Uuid, primary_key=True),  # the e-mailed token names it; only a MAC is secret
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False, index=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    _created_at(),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False, index=True),
    Column("current_token_id", Uuid, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("end_reason", String(32)),
    _created_at(),
)

events = Table(
    "events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("organizer_id", Uuid, ForeignKey("users.id"), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("venue", String(200), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("sales_start", UTCDateTime()),
    Column("sales_end", UTCDateTime()),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    _created_at(),
    Column("max_tickets_per_buyer", Integer),  # NULL: no cap (the organizer's choice)
    Column("refund_deadline", UTCDateTime()),  # buyers' own refunds end then (NULL: at the start)
    # The waiting room's configuration, in its JSON form (domain/waiting_room.py); NULL: none.
    Column("waiting_room", JSON(none_as_null=True)),
    CheckConstraint("status IN ('draft', 'published', 'cancelled', 'completed')", name="status"),
    CheckConstraint("ends_at > starts_at", name="schedule"),
    CheckConstraint("max_tickets_per_buyer >= 1", name="max_tickets_per_buyer"),
    Index("ix_events_status_starts_at_id", "status", "starts_at", "id"),
)

ticket_types = Table(
    "ticket_types",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_id", Uuid, ForeignKey("events.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Integer, nullable=False),
    Column("available", Integer, nullable=False),
    Column("max_per_booking", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    _created_at(),
    Column("max_per_buyer", Integer),  # NULL: only the event's cap applies
    # Invariant 1's floor and ceiling, enforced by the database itself.
    CheckConstraint("available >= 0 AND available <= total", name="available_in_range"),
    CheckConstraint("price_minor >= 0", name="price"),
    CheckConstraint("max_per_booking >= 1", name="max_per_booking"),
    CheckConstraint("max_per_buyer >= 1", name="max_per_buyer"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("event_id", Uuid, ForeignKey("events.id"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("hold_expires_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    _created_at(),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint(
        "status IN ('pending', 'confirmed', 'cancelled', 'expired', 'refunded')", name="status"
    ),
    Index("ix_bookings_user_id_id", "user_id", "id"),
    # Only pending holds are ever swept; keep that index small.
    Index(
        "ix_bookings_pending_hold_expires_at",
        "hold_expires_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)

booking_lines = Table(
    "booking_lines",
    metadata,
    Column("booking_id", Uuid, ForeignKey("bookings.id"), primary_key=True),
    Column("ticket_type_id", Uuid, ForeignKey("ticket_types.id"), primary_key=True, index=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="quantity"),
)

domain_events = Table(
    "domain_events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("stream_type", String(32), nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("data", Json, nullable=False),
    Column("actor_id", Uuid),
    Column("request_id", String(64)),
    Column("occurred_at", UTCDateTime(), nullable=False),
    # Two writers of one stream version: one wins, the other rolls back (optimistic concurrency).
    UniqueConstraint("stream_type", "stream_id", "version", name="uq_domain_events_stream_version"),
    Index("ix_domain_events_type", "type"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(512), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # in_flight -> committed (the change landed, in its own transaction) -> done (answer stored)
    Column("state", String(16), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=False),
    Column("resource_type", String(32)),
    Column("resource_id", Uuid),
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("response_content_type", String(100)),
    _created_at(),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    CheckConstraint("state IN ('in_flight', 'committed', 'done')", name="state"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Uuid, primary_key=True),  # also the provider's idempotency key for the charge
    Column("booking_id", Uuid, ForeignKey("bookings.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_method", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_ref", String(64)),
    Column("failure_reason", String(64)),
    Column("refund_requested_at", UTCDateTime()),
    Column("refund_ref", String(64)),
    Column("version", Integer, nullable=False),
    _created_at(),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed', 'refunded')", name="status"),
    CheckConstraint("amount_minor > 0", name="amount"),
    # At most one live payment per booking: a second attempt must reuse or follow a failure.
    Index(
        "uq_payments_live_booking",
        "booking_id",
        unique=True,
        postgresql_where=text("status <> 'failed'"),
        sqlite_where=text("status <> 'failed'"),
    ),
    Index(
        "ix_payments_unsettled",
        "updated_at",
        postgresql_where=text("status = 'pending' OR refund_requested_at IS NOT NULL"),
        sqlite_where=text("status = 'pending' OR refund_requested_at IS NOT NULL"),
    ),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("booking_id", Uuid, ForeignKey("bookings.id"), nullable=False, index=True),
    Column("ticket_type_id", Uuid, ForeignKey("ticket_types.id"), nullable=False),
    Column("code", String(32), nullable=False, unique=True),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("voided_at", UTCDateTime()),
)

# A ticket admitted at the door: the primary key admits each ticket once, whoever scans it.
check_ins = Table(
    "check_ins",
    metadata,
    Column("ticket_id", Uuid, ForeignKey("tickets.id"), primary_key=True),
    Column("event_id", Uuid, ForeignKey("events.id"), nullable=False, index=True),
    Column("admitted_at", UTCDateTime(), nullable=False),
    Column("admitted_by", Uuid, ForeignKey("users.id"), nullable=False),
)

webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("event_id", String(64), primary_key=True),  # the provider's event id: seen once
    Column("type", String(64), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

# Read models (CQRS): kept by adapters/projections.py from the domain events, in the transaction
# that appends them; `ticketflow projections rebuild` replays them from domain_events. No foreign
# keys: they are derived data, emptied and refilled at will.

rm_bookings = Table(  # "my bookings"
    "rm_bookings",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("lines", Json, nullable=False),  # as held: [{ticket_type_id, quantity, unit_price}]
    Column("ticket_ids", Json, nullable=False),  # issued on confirmation
    Column("hold_expires_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),  # when its last event happened
    Column("version", Integer, nullable=False),
    Index("ix_rm_bookings_user_id_booking_id", "user_id", "booking_id"),
)

rm_event_sales = Table(  # the sales summary's event: who may read it, and its title
    "rm_event_sales",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("organizer_id", Uuid, nullable=False),
    Column("title", String(200), nullable=False),
    Column("status", String(16), nullable=False),
)

rm_ticket_type_sales = Table(  # the sales summary per ticket type
    "rm_ticket_type_sales",
    metadata,
    Column("ticket_type_id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("held", Integer, nullable=False),  # tickets of pending bookings
    Column("sold", Integer, nullable=False),  # tickets of confirmed bookings
    Column("revenue_minor", BigInteger, nullable=False),  # confirmed, net of refunds
)

rm_availability = Table(  # what buyers browse: tickets left per ticket type
    "rm_availability",
    metadata,
    Column("ticket_type_id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False, index=True),
    Column("total", Integer, nullable=False),
    Column("available", Integer, nullable=False),
)

# The outbox relay's position (and in-process consumers'): the last seq handed on, per reader.
outbox_positions = Table(
    "outbox_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Events a consumer has applied, by their identity in the store: a redelivery is recognized.
consumer_inbox = Table(
    "consumer_inbox",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("stream_type", String(32), primary_key=True),
    Column("stream_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("handled_at", UTCDateTime(), nullable=False, index=True),
)

# Organizers' webhooks: where to POST which event types, signed with the endpoint's secret.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("event_types", Json, nullable=False),  # the domain event type names it wants
    _created_at(),
    Column("disabled_at", UTCDateTime()),  # deleted: kept for its delivery log
    Index("ix_webhook_endpoints_owner_id_id", "owner_id", "id"),
)

# One row per (endpoint, domain event): the delivery log, and the worker's queue while pending.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("stream_type", String(32), nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime()),  # while pending: when it is due (or leased until)
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    _created_at(),
    Column("delivered_at", UTCDateTime()),
    UniqueConstraint(
        "endpoint_id", "stream_type", "stream_id", "version", name="uq_webhook_deliveries_event"
    ),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
    Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)
