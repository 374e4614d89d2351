"""event store append-only: PostgreSQL refuses UPDATE and DELETE of domain events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The audit trail is only worth something if nobody, the app included, can rewrite it. SQLite
# (the embedded default) keeps the rule by convention: nothing in the code updates or deletes.
REFUSE = (
    """
CREATE FUNCTION domain_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'domain_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
""",
    """
CREATE TRIGGER domain_events_append_only
    BEFORE UPDATE OR DELETE ON domain_events
    FOR EACH ROW EXECUTE FUNCTION domain_events_refuse_change()
""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in REFUSE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER domain_events_append_only ON domain_events")
        op.execute("DROP FUNCTION domain_events_refuse_change()")
