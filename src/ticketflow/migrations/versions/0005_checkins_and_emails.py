"""ticket check-ins and e-mail deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

The e-mail consumer starts where the event store is now: in the embedded mode it reads the store
from its stored position, and without one it would mail every buyer of every past booking.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EMAIL_POSITION = "consumer:email"  # services/ticket_emails.py CONSUMER, read by EventStoreReader


def upgrade() -> None:
    op.create_table(
        "check_ins",
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admitted_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["admitted_by"], ["users.id"], name=op.f("fk_check_ins_admitted_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_check_ins_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_check_ins_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_check_ins")),
    )
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_ins_event_id"), ["event_id"], unique=False)

    positions = sa.table(
        "outbox_positions",
        sa.column("name", sa.String()),
        sa.column("last_seq", sa.BigInteger()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    last_seq = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(seq), 0) FROM domain_events"))
    op.bulk_insert(
        positions,
        [{"name": EMAIL_POSITION, "last_seq": last_seq, "updated_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM outbox_positions WHERE name = :name").bindparams(name=EMAIL_POSITION)
    )
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_ins_event_id"))
    op.drop_table("check_ins")
