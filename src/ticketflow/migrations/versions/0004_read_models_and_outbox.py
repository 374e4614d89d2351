"""read models (rm_*), outbox positions, consumer inbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

The read models start empty: `ticketflow migrate` replays the event store into them when this
revision creates them on a database that already has events (`ticketflow projections rebuild`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "rm_bookings",
        sa.Column("booking_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", JSON, nullable=False),
        sa.Column("ticket_ids", JSON, nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_rm_bookings")),
    )
    with op.batch_alter_table("rm_bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rm_bookings_user_id_booking_id", ["user_id", "booking_id"], unique=False
        )

    op.create_table(
        "rm_event_sales",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("organizer_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_rm_event_sales")),
    )

    op.create_table(
        "rm_ticket_type_sales",
        sa.Column("ticket_type_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_type_id", name=op.f("pk_rm_ticket_type_sales")),
    )
    with op.batch_alter_table("rm_ticket_type_sales", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rm_ticket_type_sales_event_id"), ["event_id"], unique=False
        )

    op.create_table(
        "rm_availability",
        sa.Column("ticket_type_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_type_id", name=op.f("pk_rm_availability")),
    )
    with op.batch_alter_table("rm_availability", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rm_availability_event_id"), ["event_id"], unique=False)

    op.create_table(
        "outbox_positions",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_outbox_positions")),
    )

    op.create_table(
        "consumer_inbox",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("stream_type", sa.String(length=32), nullable=False),
        sa.Column("stream_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "consumer", "stream_type", "stream_id", "version", name=op.f("pk_consumer_inbox")
        ),
    )
    with op.batch_alter_table("consumer_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consumer_inbox_handled_at"), ["handled_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consumer_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consumer_inbox_handled_at"))
    op.drop_table("consumer_inbox")
    op.drop_table("outbox_positions")
    with op.batch_alter_table("rm_availability", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rm_availability_event_id"))
    op.drop_table("rm_availability")
    with op.batch_alter_table("rm_ticket_type_sales", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rm_ticket_type_sales_event_id"))
    op.drop_table("rm_ticket_type_sales")
    op.drop_table("rm_event_sales")
    with op.batch_alter_table("rm_bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_rm_bookings_user_id_booking_id")
    op.drop_table("rm_bookings")
