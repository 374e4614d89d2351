"""adapters/db.py `one_statement_read`: on PostgreSQL no transaction around the read (no BEGIN
or ROLLBACK round trips), and its connection back in the pool as transactional as before."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.db import create_engine, one_statement_read
from ticketflow.config import Settings

# Assigns the running transaction an id: the same for two statements of one transaction.
_TRANSACTION = text("SELECT txid_current()")


async def _transactions_of_two_statements(connection: AsyncConnection) -> int:
    first = await connection.scalar(_TRANSACTION)
    second = await connection.scalar(_TRANSACTION)
    return len({first, second})


async def test_a_one_statement_read_runs_without_a_transaction_on_postgresql(
    pg_settings: Settings,
) -> None:
    one_connection = pg_settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
    engine = create_engine(one_connection)
    try:
        async with one_statement_read(engine) as connection:
            assert await _transactions_of_two_statements(connection) == 2
        async with engine.connect() as connection:  # the same connection, from the pool
            assert await _transactions_of_two_statements(connection) == 1
    finally:
        await engine.dispose()
