"""The ledger's SQLite file: its two tables (create_all at start-up: a sandbox has no
migrations) and the engine that opens it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    MetaData,
    String,
    Table,
    TypeDecorator,
    event,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()
# Write transactions start with BEGIN IMMEDIATE: each writer's read-then-write runs alone.
WRITE = {"ledger_write": True}


class UtcDateTime(TypeDecorator[datetime]):
    """SQLite keeps no time zone: store UTC, read it back as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None) if value else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value else None


charges = Table(
    "charges",
    metadata,
    Column("id", String(40), primary_key=True),
    # Unique: concurrent requests with one key can record one charge only.
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_method", String(100), nullable=False),
    Column("reference", String(200), index=True),
    Column("status", String(16), nullable=False),
    Column("decline_reason", String(40)),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("refunded_minor BETWEEN 0 AND amount_minor", name="refunds_within_charge"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("charge_id", ForeignKey("charges.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    # What the caller asked for (null = the rest): a replay must ask for the same.
    Column("requested_minor", BigInteger),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


def open_ledger_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in ("busy_timeout=30000", "journal_mode=WAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("ledger_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
