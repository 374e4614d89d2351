"""Engines and the differences between PostgreSQL and the embedded SQLite default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ticketflow.config import Settings

# Write transactions on SQLite start with BEGIN IMMEDIATE so two writers queue on the database
# lock (busy_timeout) instead of failing with "database is locked" when a reader upgrades.
WRITE = {"ticketflow_write": True}


def create_engine(settings: Settings) -> AsyncEngine:
    if not settings.is_sqlite:
        return create_async_engine(
            settings.async_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
            # No pre-ping: it costs a round trip per checkout on the hot path; a connection
            # found dead is invalidated on use and replaced (and recycled hourly anyway).
            pool_recycle=3600,
        )
    engine = create_async_engine(settings.async_database_url)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "synchronous=FULL",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("ticketflow_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@asynccontextmanager
async def one_statement_read(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for a read of one statement, which a transaction gives nothing (one
    statement sees one snapshot): on PostgreSQL it runs without one (autocommit), sparing the
    BEGIN and ROLLBACK round trips around it. On SQLite as any connection (ours begin their
    transactions themselves, above, which its autocommit setting would undo)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection
