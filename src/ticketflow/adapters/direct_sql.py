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
listener sees every statement. An INSERT of many rows is one statement whatever their count,
of one shape for any count (each column's values one array, unnested: `Direct._for_arrays`).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import Enum, String, bindparam, exc, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.types import TypeEngine

Params = Mapping[str, Any]
_Processor = Callable[[Any], Any]


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
        self._arrays_compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: Dialect, keys: tuple[str, ...] | None = None) -> _Compiled:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            found = self._compiled[(dialect.name, keys)] = _compiled(self.statement, dialect, keys)
        return found

    def _for_arrays(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        """The INSERT of any number of rows as one statement of one shape: each column's
        values bound as one array (`key__all`, of one dimension: a JSON value that is a list
        stays one value) and unnested into rows. asyncpg prepares a statement per distinct
        SQL, and many VALUES made one per row count; its `executemany` runs the statement once
        per row. A bind of the statement's own that is not a column (the key upsert's `now`)
        is one value for all rows."""
        found = self._arrays_compiled.get((dialect.name, keys))
        if found is None:
            assert isinstance(self.statement, Insert)
            columns = self.statement.table.c
            names = [key for key in keys if key in columns]
            arrays = [
                bindparam(f"{name}__all", type_=ARRAY(_unbounded(columns[name].type), dimensions=1))
                for name in names
            ]
            given = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
            compiled = _compiled(self.statement.from_select(names, select(*given.c)), dialect, None)
            # Each value processed as its column's type processes it, without the walk that
            # SQLAlchemy's ARRAY type adds around that (twice the CPU of the values' own).
            items = {
                f"{name}__all": columns[name].type._cached_bind_processor(dialect) for name in names
            }
            slots = tuple(
                replace(slot, processor=_each(items[slot.key])) if slot.key in items else slot
                for slot in compiled.slots
            )
            found = self._arrays_compiled[(dialect.name, keys)] = replace(compiled, slots=slots)
        return found

    def _arguments(
        self, dialect: Dialect, many: Sequence[Params]
    ) -> tuple[_Compiled, list[list[Any]]]:
        """The statement for `many` and its arguments, one list per execution: an INSERT's
        rows go in one (one row as VALUES, more as arrays: arrays cost more to encode than a
        row's values, which a hold alone in its batch paid for, +14% of its instructions), any
        other statement runs once per parameter set."""
        if not isinstance(self.statement, Insert) or len(many) == 1:
            compiled = self._for(dialect, self._keys(many[0]))
            return compiled, [compiled.arguments(params) for params in many]
        keys = tuple(many[0])
        compiled = self._for_arrays(dialect, keys)
        columns = self.statement.table.c
        given: dict[str, Any] = {}
        for key in keys:
            if key in columns:
                given[f"{key}__all"] = [params[key] for params in many]
            elif any(params[key] != many[0][key] for params in many):
                raise ValueError(f"{key!r} is not a column: one value for all rows")
            else:
                given[key] = many[0][key]
        return compiled, [compiled.arguments(given)]

    def _keys(self, params: Params) -> tuple[str, ...] | None:
        """An INSERT's columns are the ones given; other statements have their own binds."""
        return tuple(params) if isinstance(self.statement, Insert) else None

    async def _driven(
        self,
        connection: AsyncConnection,
        sql: str,
        arguments: list[list[Any]],
        fetch: bool,
        first: bool = False,
    ) -> Any:
        """Runs `sql` once per list of `arguments` (in one round trip), the queued writes in
        front (`first`: gated behind it, see `rows_first`); its rows (`fetch`) or its status.
        Errors as SQLAlchemy raises them."""
        driver = await _driver(connection)
        queued = _queued(connection)
        if queued:
            if len(arguments) > 1:  # run once per parameter set: the queued writes must go once
                await send_later(connection)
            else:
                carry = _gated_behind if first else _carrying
                sql, arguments[0] = carry(queued, (sql, arguments[0]))
                queued.clear()
        try:
            if len(arguments) > 1:
                run_many = driver.fetchmany if fetch else driver.executemany
                return await run_many(sql, arguments)
            return await (driver.fetch if fetch else driver.execute)(sql, *arguments[0])
        except Exception as error:
            raise _translated(connection, sql, arguments, error) from error

    async def rows(self, connection: AsyncConnection, params: Params | None = None) -> list[Any]:
        params = params or {}
        if not _direct(connection):
            return list((await connection.execute(self.statement, params)).all())
        compiled = self._for(connection.dialect, self._keys(params))
        return compiled.rows(
            await self._driven(connection, compiled.sql, [compiled.arguments(params)], True)
        )

    async def rows_first(
        self, connection: AsyncConnection, params: Params | None = None
    ) -> list[Any]:
        """Runs it, a write RETURNING rows, ahead of the writes queued in the transaction:
        each queued UPDATE goes with it only if it returned a row, and so after it, with the
        locks it took already held (a hold's decrement, then the counters every writer of the
        ticket type shares: PostgreSQL does not promise the order in which the members of one
        WITH run, a member that reads another's rows runs after it). Only where queued writes
        are carried (`carries_later`): elsewhere they ran when queued, before this."""
        if not carries_later(connection):
            raise RuntimeError("rows_first where queued writes are not carried")
        compiled = self._for(connection.dialect, self._keys(params or {}))
        arguments = [compiled.arguments(params or {})]
        return compiled.rows(
            await self._driven(connection, compiled.sql, arguments, True, first=True)
        )

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
        compiled = self._for(connection.dialect, self._keys(params))
        status = await self._driven(connection, compiled.sql, [compiled.arguments(params)], False)
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else -1

    async def run_many(
        self, connection: AsyncConnection, many: Sequence[Params], *, later: bool = False
    ) -> None:
        """Runs it once per parameter set (all with the same keys), in one round trip (an
        INSERT as one statement for all its rows); with `later`, that round trip is saved:
        the write is queued to go with the transaction's next Direct statement, or with
        `send_later` (module docstring), which the caller then owes before its commit. Where
        statements are not run directly, `later` runs it now, after whatever was queued."""
        if not many:
            return
        if not _direct(connection):
            await send_later(connection)  # what was queued first goes first
            await connection.execute(self.statement, list(many))
            return
        compiled, arguments = self._arguments(connection.dialect, many)
        if later:
            await _driver(connection)  # the transaction the writes belong to
            _queue(connection).extend((compiled.sql, each) for each in arguments)
        else:
            await self._driven(connection, compiled.sql, arguments, False)

    async def rows_many(self, connection: AsyncConnection, many: Sequence[Params]) -> list[Any]:
        """Runs it once per parameter set, in one round trip (an INSERT as one statement for
        all its rows); the rows all of them returned."""
        if not many:
            return []
        if not _direct(connection):
            await send_later(connection)  # what was queued first goes first
            return list((await connection.execute(self.statement, list(many))).all())
        compiled, arguments = self._arguments(connection.dialect, many)
        return compiled.rows(await self._driven(connection, compiled.sql, arguments, True))


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


def _gated_behind(writes: Sequence[_Write], main: _Write) -> _Write:
    """`main` (a write RETURNING rows) as the WITH member `first`, then `writes`, each UPDATE
    among them run only if `first` returned a row; the statement returns `first`'s rows."""
    sql = _gated_sql(
        tuple((write, len(arguments)) for write, arguments in writes), main[0], len(main[1])
    )
    return sql, [argument for _, arguments in (main, *writes) for argument in arguments]


@lru_cache(maxsize=256)
def _gated_sql(writes: tuple[tuple[str, int], ...], main: str, offset: int) -> str:
    if main.startswith("WITH "):
        raise ValueError("a statement that goes first must not have a WITH of its own")
    members = [f"first AS ({main})"]
    for index, (sql, count) in enumerate(writes):
        members.append(f"later_{index} AS ({_gate(_shifted(sql, offset))})")
        offset += count
    return f"WITH {', '.join(members)} SELECT * FROM first"


def _gate(sql: str) -> str:
    """An UPDATE made to run only once `first` returned a row; a plain INSERT as it is (new
    rows: no row lock another writer holds is waited for, whenever it runs)."""
    if sql.startswith("INSERT ") and " ON CONFLICT " not in sql:
        return sql
    if not sql.startswith("UPDATE "):
        raise ValueError(f"cannot go behind a statement that goes first: {sql[:80]}")
    if sql.count("WHERE") != 1 or " RETURNING " in sql:
        raise ValueError(f"cannot gate this UPDATE: {sql[:80]}")
    return sql.replace(" WHERE ", " WHERE (", 1) + ") AND EXISTS (SELECT FROM first)"


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


def _each(processor: _Processor | None) -> _Processor | None:
    """An array's processing: `processor` applied to each of its values."""
    if processor is None:
        return None
    return lambda values: [processor(value) for value in values]


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """A string type without its length: the arrays' cast would cut a value to the length
    silently, where the column refuses it ("value too long")."""
    bounded = isinstance(type_, String) and not isinstance(type_, Enum) and type_.length
    return String() if bounded else type_


def _adapted(connection: AsyncConnection) -> Any:
    """SQLAlchemy's adapter around the asyncpg connection."""
    return connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]


def carries_later(connection: AsyncConnection) -> bool:
    """Whether writes queued `later` here go with the next statement (else they run at once)."""
    return _direct(connection)


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
