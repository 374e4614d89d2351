"""the waiting room's configuration on events

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

A JSON column (domain/waiting_room.py's form of it); NULL, as for every existing event: no room.
The line itself is not in the database: it lives in Redis (or the process, embedded).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_room", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("waiting_room")
