"""Statements built once and, on PostgreSQL, run by asyncpg itself.

SQLAlchemy's execution of a statement costs three times asyncpg's own CPU (an execution context,
the result's metadata and rows, a greenlet switch each way: a two-table read 240-310 us against
75-103 us, bench/README.md), and a hold batch of one runs a dozen statements. A `Direct`
statement is the same Core statement, compiled once per shape: on PostgreSQL its SQL runs on the
connection's own asyncpg connection, in the transaction SQLAlchemy keeps (begun here if no
statement has begun it yet), with the types' bind and result processing applied as SQLAlchemy
applies them and its errors raised as SQLAlchemy raises them; on SQLite, the embedded default,
SQLAlchemy runs it as before. Rows come back with attribute access on both. So does SQLAlchemy
wherever something listens to its statements (tracing's spans, a test counting reads): every
listener sees every statement.

Writes whose outcome nobody waits for (the rows a transaction inserts, the read models it moves)
can be queued (`run_many(..., later=True)`): they then go as part of the transaction's next
Direct statement, as the members of a WITH in front of it, and the round trip each would have
cost is saved (a hold batch of one made 13, now 8; PostgreSQL runs every member once, all under
the statement's snapshot, and checks their foreign keys at its end). `send_later` sends what is
still queued, as one statement, and must come before the commit; `drop_later` forgets it on a
rollback. Only the unit of work queues (services/unit_of_work.py: its commit sends), never a
function's default. A statement that carries them does not see them (one snapshot), nor do they
see each other (two must never write one row), so a transaction that queues writes runs only
reads that need not see them until they are sent; a statement run by SQLAlchemy meanwhile
(`connection.execute`) would even run before them.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any]
# Past this many rows an INSERT goes to SQLAlchemy, which sends them as one statement of many
# VALUES (its cost per statement shared by them all), where the driver executes the statement
# once per row: a burst's batches of hundreds drained 7-8% slower that way (bench/README.md).
MANY_ROWS = 10


@dataclass(frozen=True)
class _Slot:
    """One positional parameter: the caller's value by `key` (else the statement's own
    `value`), through the type's bind `processor`."""

    key: str | None
    value: Any
    processor: _Processor | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    slots: tuple[_Slot, ...]
    row: Callable[..., Any] | None  # the row type, None without result columns
    processors: tuple[_Processor | None, ...]

    def arguments(self, params: Params) -> list[Any]:
        values = []
        for slot in self.slots:
            value = params[slot.key] if slot.key is not None else slot.value
            values.append(slot.processor(value) if slot.processor else value)
        return values

    def rows(self, records: Sequence[Any]) -> list[Any]:
        assert self.row is not None, "a statement without result columns"
        processors, row = self.processors, self.row
        return [
            row(*(p(value) if p else value for p, value in zip(processors, record, strict=True)))
            for record in records
        ]


def _compiled(statement: Executable, dialect: Dialect, keys: tuple[str, ...] | None) -> _Compiled:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
    assert isinstance(compiled, SQLCompiler)
    if compiled.post_compile_params or compiled.literal_execute_params:
        raise ValueError("a Direct statement's SQL must not depend on its values (expanding IN)")
    processors = compiled._bind_processors
    slots = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise ValueError("a Direct statement's values are the caller's or its own constants")
        processor = processors.get(name)
        assert processor is None or callable(processor)
        key = bind.key if bind.required else None
        slots.append(_Slot(key, None if key else bind.value, processor))
    columns = compiled._result_columns
    row = namedtuple("Row", [column.keyname for column in columns]) if columns else None
    result_processors = tuple(
        column.type._cached_result_processor(dialect, None) for column in columns
    )
    return _Compiled(compiled.string, tuple(slots), row, result_processors)


class Direct:
    """A Core statement run by the driver itself on PostgreSQL (module docstring)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...] | None], _Compiled] = {}
        self._rows_compiled: dict[tuple[str, tuple[str, ...], int], _Compiled] = {}

    def _for(self, dialect: Dialect, keys: tuple[str, ...] | None = None) -> _Compiled:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            found = self._compiled[(dialect.name, keys)] = _compiled(self.statement, dialect, keys)
        return found

    def _for_rows(self, dialect: Dialect, keys: tuple[str, ...], count: int) -> _Compiled:
        """The INSERT of `count` rows in one statement (VALUES of many rows), the i-th row's
        value of `key` bound as `key__i`."""
        found = self._rows_compiled.get((dialect.name, keys, count))
        if found is None:
            assert isinstance(self.statement, Insert)
            columns = self.statement.table.c
            rows = [
                {key: bindparam(f"{key}__{i}", type_=columns[key].type) for key in keys}
                for i in range(count)
            ]
            found = _compiled(self.statement.values(rows), dialect, None)
            self._rows_compiled[(dialect.name, keys, count)] = found
        return found

    def _direct_for(self, connection: AsyncConnection, count: int) -> bool:
        return _direct(connection) and (
            count <= MANY_ROWS or not isinstance(self.statement, Insert)
        )

    def _keys(self, params: Params) -> tuple[str, ...] | None:
        """An INSERT's columns are the ones given; other statements have their own binds."""
        return tuple(params) if isinstance(self.statement, Insert) else None

    async def _driven(
        self,
        connection: AsyncConnection,
        many: Sequence[Params],
        call: Callable[[Any, str, list[list[Any]]], Awaitable[Any]],
    ) -> tuple[_Compiled, Any]:
        """`call(driver, sql, arguments)`, the arguments one list per parameter set; errors
        as SQLAlchemy raises them."""
        compiled = self._for(connection.dialect, self._keys(many[0]))
        arguments = [compiled.arguments(params) for params in many]
        driver = await _driver(connection)
        sql, queued = compiled.sql, _queued(connection)
        if queued:
            if len(many) > 1:  # run once per parameter set: the queued writes must go once
                await send_later(connection)
            else:
                sql, arguments[0] = _carrying(queued, (sql, arguments[0]))
                queued.clear()
        try:
            return compiled, await call(driver, sql, arguments)
        except Exception as error:
            raise _translated(connection, sql, arguments, error) from error

    async def _later(self, connection: AsyncConnection, many: Sequence[Params]) -> None:
        """Queue this write to go with the transaction's next Direct statement."""
        inserting = isinstance(self.statement, Insert)
        await _driver(connection)  # the transaction the writes belong to
        queued = _queue(connection)
        if inserting:
            keys = tuple(many[0])
            compiled = self._for_rows(connection.dialect, keys, len(many))
            numbered = {f"{key}__{i}": row[key] for i, row in enumerate(many) for key in keys}
            queued.append((compiled.sql, compiled.arguments(numbered)))
        else:
            compiled = self._for(connection.dialect)
            queued.extend((compiled.sql, compiled.arguments(params)) for params in many)

    async def rows(self, connection: AsyncConnection, params: Params | None = None) -> list[Any]:
        params = params or {}
        if not _direct(connection):
            return list((await connection.execute(self.statement, params)).all())
        compiled, records = await self._driven(
            connection, [params], lambda driver, sql, arguments: driver.fetch(sql, *arguments[0])
        )
        return compiled.rows(records)

    async def one_or_none(
        self, connection: AsyncConnection, params: Params | None = None
    ) -> Any | None:
        found = await self.rows(connection, params)
        if len(found) > 1:
            raise exc.MultipleResultsFound("more than one row where one or none was expected")
        return found[0] if found else None

    async def run(self, connection: AsyncConnection, params: Params | None = None) -> int:
        """Runs it; the rows it changed."""
        params = params or {}
        if not _direct(connection):
            return int((await connection.execute(self.statement, params)).rowcount)
        _, status = await self._driven(
            connection, [params], lambda driver, sql, arguments: driver.execute(sql, *arguments[0])
        )
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else -1

    async def run_many(
        self, connection: AsyncConnection, many: Sequence[Params], *, later: bool = False
    ) -> None:
        """Runs it once per parameter set (all with the same keys), in one round trip; with
        `later`, that round trip is saved: the write is queued to go with the transaction's next
        Direct statement, or with `send_later` (module docstring), which the caller then owes
        before its commit. Where statements are not run directly, and for an INSERT of more
        than MANY_ROWS rows, `later` runs it now, after whatever was queued before it."""
        if not many:
            return
        direct = self._direct_for(connection, len(many))
        if later and direct:
            await self._later(connection, many)
            return
        if not direct:
            await send_later(connection)  # what was queued first goes first
            await connection.execute(self.statement, list(many))
            return
        await self._driven(
            connection, many, lambda driver, sql, arguments: driver.executemany(sql, arguments)
        )

    async def rows_many(self, connection: AsyncConnection, many: Sequence[Params]) -> list[Any]:
        """Runs it once per parameter set, in one round trip; the rows all of them returned."""
        if not many:
            return []
        if not self._direct_for(connection, len(many)):
            await send_later(connection)  # what was queued first goes first
            return list((await connection.execute(self.statement, list(many))).all())
        compiled, records = await self._driven(
            connection, many, lambda driver, sql, arguments: driver.fetchmany(sql, arguments)
        )
        return compiled.rows(records)


_Write = tuple[str, list[Any]]  # SQL and its arguments
_LATER = "ticketflow.direct_sql.later"


@dataclass(eq=False)
class _Later:
    """The writes queued on a connection, and the driver's transaction they belong to."""

    transaction: Any
    writes: list[_Write] = field(default_factory=list)


def _queued(connection: AsyncConnection) -> list[_Write]:
    """The writes queued in `connection`'s transaction (empty if none)."""
    later: _Later | None = connection.info.get(_LATER)
    if later is None or not later.writes:
        return []
    if later.transaction is not _adapted(connection)._transaction:
        # Never dropped silently: a commit that did not send them lost them.
        raise RuntimeError("writes queued in a transaction that ended without sending them")
    return later.writes


def _queue(connection: AsyncConnection) -> list[_Write]:
    """The list to queue writes in, in `connection`'s transaction (begun)."""
    queued = _queued(connection)
    if queued:
        return queued
    later = connection.info[_LATER] = _Later(_adapted(connection)._transaction)
    return later.writes


async def send_later(connection: AsyncConnection) -> None:
    """Send the writes still queued in `connection`'s transaction, as one statement."""
    queued = _queued(connection)
    if not queued:
        return
    writes = list(queued)
    queued.clear()
    sql, arguments = _carrying(writes[:-1], writes[-1])
    driver = await _driver(connection)
    try:
        await driver.execute(sql, *arguments)
    except Exception as error:
        raise _translated(connection, sql, arguments, error) from error


def drop_later(connection: AsyncConnection) -> None:
    """Forget the writes queued in `connection`'s transaction (it is being rolled back)."""
    connection.info.pop(_LATER, None)


def _carrying(writes: Sequence[_Write], main: _Write) -> _Write:
    """`main` with `writes` in front of it, as the members of its WITH."""
    sql = _carrying_sql(tuple((write, len(arguments)) for write, arguments in writes), main[0])
    return sql, [argument for _, arguments in (*writes, main) for argument in arguments]


_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=1024)
def _carrying_sql(writes: tuple[tuple[str, int], ...], main: str) -> str:
    if not writes:
        return main
    members, offset = [], 0
    for index, (sql, count) in enumerate(writes):
        members.append(f"later_{index} AS ({_shifted(sql, offset)})")
        offset += count
    main = _shifted(main, offset)
    for opening in ("WITH RECURSIVE ", "WITH "):  # a WITH of its own: ours go first in it
        if main.startswith(opening):
            return f"{opening}{', '.join(members)}, {main[len(opening) :]}"
    return f"WITH {', '.join(members)} {main}"


def _shifted(sql: str, by: int) -> str:
    """The SQL with its placeholders $n numbered from `by` + 1."""
    return _PLACEHOLDER.sub(lambda found: f"${int(found.group(1)) + by}", sql) if by else sql


def _adapted(connection: AsyncConnection) -> Any:
    """SQLAlchemy's adapter around the asyncpg connection."""
    return connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]


def _direct(connection: AsyncConnection) -> bool:
    """Whether the driver runs statements here: on PostgreSQL, nobody listening."""
    return connection.dialect.name == "postgresql" and not (
        connection.sync_engine._has_events or connection.sync_connection._has_events  # type: ignore[union-attr]
    )


async def _driver(connection: AsyncConnection) -> Any:
    """The asyncpg connection under `connection`, in the transaction SQLAlchemy keeps for it:
    begun now if no statement has begun it (SQLAlchemy sends BEGIN lazily, at the first one),
    and begun for SQLAlchemy too if nothing had (as its autobegin would), so its commit or
    rollback is this statement's."""
    adapted = _adapted(connection)
    if adapted._transaction is None and not adapted.autocommit:
        if not connection.in_transaction():
            await connection.begin()
        await adapted._start_transaction()
    return adapted._connection


def _translated(
    connection: AsyncConnection, sql: str, arguments: Any, error: Exception
) -> Exception:
    """The error as SQLAlchemy raises it for the same statement (IntegrityError and the like)."""
    adapted = _adapted(connection)
    dialect = connection.dialect
    try:
        adapted._handle_exception(error)  # raises it as the dialect's DBAPI error
    except Exception as dbapi_error:
        translated = exc.DBAPIError.instance(
            sql, arguments, dbapi_error, dialect.loaded_dbapi.Error, dialect=dialect
        )
        return translated
    return error
