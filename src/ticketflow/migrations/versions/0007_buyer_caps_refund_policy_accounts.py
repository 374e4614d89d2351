"""per-buyer caps, the refund deadline, disabled accounts and password resets

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Events that exist keep selling as they did: their cap is NULL (none). New events get 10 from the
API, which is where "default" is decided, not here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_tickets_per_buyer", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("refund_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_events_max_tickets_per_buyer"), "max_tickets_per_buyer >= 1"
        )
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_per_buyer", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_ticket_types_max_per_buyer"), "max_per_buyer >= 1"
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "password_resets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_resets_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_resets_user_id"))
    op.drop_table("password_resets")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
    with op.batch_alter_table("ticket_types", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_types_max_per_buyer"), type_="check")
        batch_op.drop_column("max_per_buyer")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_events_max_tickets_per_buyer"), type_="check")
        batch_op.drop_column("refund_deadline")
        batch_op.drop_column("max_tickets_per_buyer")
