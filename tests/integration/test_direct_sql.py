"""adapters/direct_sql.py: a `Direct` statement answers what SQLAlchemy answers for it (types
processed the same way), runs in the transaction of its connection (begun by it when it comes
first), and fails as SQLAlchemy fails; on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, MultipleResultsFound

from tests.conftest import wipe
from ticketflow.adapters.db import create_engine
from ticketflow.adapters.direct_sql import Direct, carries_later, drop_later, send_later
from ticketflow.adapters.tables import domain_events, rm_event_sales
from ticketflow.config import Settings

_WHEN = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
_APPEND = Direct(insert(domain_events))
_OF_STREAM = Direct(
    select(domain_events)
    .where(domain_events.c.stream_id == bindparam("stream"))
    .order_by(domain_events.c.version)
)
_SALES = Direct(insert(rm_event_sales))
_RENAME = Direct(  # the status is the statement's own value, the title the caller's
    update(rm_event_sales)
    .where(
        rm_event_sales.c.organizer_id == bindparam("organizer"), rm_event_sales.c.status == "live"
    )
    .values(title=bindparam("new_title"))
)
_COUNT = Direct(
    select(func.count().label("n")).where(domain_events.c.stream_id == bindparam("stream"))
)


def _event(stream: uuid.UUID, version: int, type_: str = "Old") -> dict[str, object]:
    return {
        "stream_type": "test",
        "stream_id": stream,
        "version": version,
        "type": type_,
        "data": {"version": version, "nested": [1, "two"]},
        "actor_id": None,
        "request_id": f"r{version}",
        "occurred_at": _WHEN,
    }


@pytest.fixture
async def engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = create_engine(settings)
    await wipe(engine)
    yield engine
    await engine.dispose()


async def test_a_direct_statement_answers_as_sqlalchemy_does(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.begin() as connection:
        await _APPEND.run_many(connection, [_event(stream, 1), _event(stream, 2, "Kept")])
        direct = await _OF_STREAM.rows(connection, {"stream": stream})
        through_sqlalchemy = (
            await connection.execute(_OF_STREAM.statement, {"stream": stream})
        ).all()
        assert [tuple(row) for row in direct] == [tuple(row) for row in through_sqlalchemy]
        first = direct[0]
        assert first.data == {"version": 1, "nested": [1, "two"]}  # JSON decoded
        assert first.occurred_at == _WHEN and first.occurred_at.tzinfo is not None  # UTC, aware
        assert isinstance(first.stream_id, uuid.UUID) and first.stream_id == stream
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 2
        organizer = uuid.uuid4()
        sales = [
            {"event_id": uuid.uuid4(), "organizer_id": organizer, "title": "t", "status": status}
            for status in ("live", "live", "cancelled")
        ]
        await _SALES.run_many(connection, sales)
        assert await _RENAME.run(connection, {"organizer": organizer, "new_title": "New"}) == 2
        titles = select(rm_event_sales.c.title).where(rm_event_sales.c.organizer_id == organizer)
        assert sorted((await connection.execute(titles)).scalars()) == ["New", "New", "t"]
        with pytest.raises(MultipleResultsFound):
            await _OF_STREAM.one_or_none(connection, {"stream": stream})


async def test_a_direct_write_first_in_a_transaction_rolls_back_with_it(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, [_event(stream, 1)])  # before any other statement
        await connection.rollback()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 0


async def test_a_direct_write_commits_with_its_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, [_event(stream, 1)])
        assert (await connection.scalar(text("SELECT 1"))) == 1  # SQLAlchemy's, same transaction
        await connection.commit()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1


async def test_a_direct_statement_fails_as_sqlalchemy_does(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, [_event(stream, 1)])
        with pytest.raises(IntegrityError):  # the stream's version taken
            await _APPEND.run_many(connection, [_event(stream, 1)])
        await connection.rollback()
        # The connection goes on: a new transaction, through both paths.
        await connection.begin()
        await _APPEND.run_many(connection, [_event(stream, 1)])
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1
        await connection.commit()


async def test_rows_many_returns_every_parameter_sets_rows(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    returning = Direct(insert(domain_events).returning(domain_events.c.version))
    async with engine.begin() as connection:
        rows = await returning.rows_many(connection, [_event(stream, v) for v in (1, 2, 3)])
        assert sorted(row.version for row in rows) == [1, 2, 3]


async def test_a_direct_write_on_a_connection_not_begun_begins_as_sqlalchemy_would(engine) -> None:  # type: ignore[no-untyped-def]
    committed, dropped = uuid.uuid4(), uuid.uuid4()
    async with engine.connect() as connection:  # no begin(): SQLAlchemy would autobegin
        await _APPEND.run_many(connection, [_event(committed, 1)])
        assert connection.in_transaction()
        await connection.commit()
    async with engine.connect() as connection:
        await _APPEND.run_many(connection, [_event(dropped, 1)])
    # closed without a commit: rolled back, as a write through SQLAlchemy would be
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": committed})).n == 1
        assert (await _COUNT.one_or_none(connection, {"stream": dropped})).n == 0


async def test_every_statement_reaches_sqlalchemy_listeners_while_there_are_any(engine) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    stream = uuid.uuid4()
    event.listen(engine.sync_engine, "before_cursor_execute", count)  # tracing does this
    try:
        async with engine.begin() as connection:
            await _APPEND.run_many(connection, [_event(stream, 1)])
            await _OF_STREAM.rows(connection, {"stream": stream})
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    mine = [statement.split()[0] for statement in seen if "domain_events" in statement]
    assert mine == ["INSERT", "SELECT"]


async def test_many_rows_are_inserted_and_returned_in_one_statement(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    count = 30  # one statement of arrays on PostgreSQL, whatever the count
    returning = Direct(insert(domain_events).returning(domain_events.c.version))
    async with engine.begin() as connection:
        rows = await returning.rows_many(connection, [_event(stream, v) for v in range(count)])
        assert sorted(row.version for row in rows) == list(range(count))
        await _APPEND.run_many(connection, [_event(stream, count + v) for v in range(count)])
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 2 * count
        lists = [{**_event(stream, 2 * count + v), "data": [[], [v]]} for v in range(2)]
        await _APPEND.run_many(connection, lists)  # a JSON value that is a list is one value
        stored = await _OF_STREAM.rows(connection, {"stream": stream})
        assert [row.data for row in stored[-2:]] == [[[], [0]], [[], [1]]]


_STREAM_SEQS = Direct(  # a statement with a WITH of its own: queued writes join its members
    select(func.count().label("n")).select_from(
        select(domain_events.c.seq)
        .where(domain_events.c.stream_id == bindparam("stream"))
        .cte("of_stream")
    )
)


async def test_queued_writes_go_with_the_next_statement_and_commit_with_it(engine) -> None:  # type: ignore[no-untyped-def]
    stream, organizer = uuid.uuid4(), uuid.uuid4()
    sale = {"event_id": uuid.uuid4(), "organizer_id": organizer, "title": "t", "status": "live"}
    async with engine.begin() as connection:
        await _SALES.run_many(connection, [sale])
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 1), _event(stream, 2)])
        await _RENAME.run_many(
            connection, later=True, many=[{"organizer": organizer, "new_title": "renamed"}]
        )
        await _STREAM_SEQS.one_or_none(connection, {"stream": stream})  # carries them
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 3)])
        await send_later(connection)  # what no statement carried
        await connection.commit()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 3
        assert [row.data for row in await _OF_STREAM.rows(connection, {"stream": stream})] == [
            _event(stream, version)["data"] for version in (1, 2, 3)
        ]
        title = select(rm_event_sales.c.title).where(rm_event_sales.c.organizer_id == organizer)
        assert await connection.scalar(title) == "renamed"


async def test_a_rollback_forgets_queued_writes_and_the_connection_goes_on(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 1)])
        drop_later(connection)
        await connection.rollback()
        await connection.begin()
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 0
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 1)])
        await send_later(connection)
        await connection.commit()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1


async def test_a_queued_write_that_fails_fails_its_carrier_as_sqlalchemy_fails(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.begin() as connection:
        await _APPEND.run_many(connection, [_event(stream, 1)])
    async with engine.connect() as connection:
        await connection.begin()
        with pytest.raises(IntegrityError):  # the stream's version taken: now or on its carrier
            await _APPEND.run_many(
                connection, later=True, many=[_event(stream, 2), _event(stream, 1)]
            )
            await _COUNT.one_or_none(connection, {"stream": stream})
        drop_later(connection)
        await connection.rollback()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1


async def test_a_queued_insert_of_any_size_stores_its_rows_in_its_order(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.begin() as connection:
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 0)])
        await _APPEND.run_many(
            connection, later=True, many=[_event(stream, v) for v in range(1, 42)]
        )
        await send_later(connection)
    async with engine.connect() as connection:
        stored = await _OF_STREAM.rows(connection, {"stream": stream})
    assert sorted(row.version for row in stored) == list(range(42))
    # Two queued writes run in an order PostgreSQL does not promise; one insert's rows keep
    # theirs (the event store's sequence numbers follow its events' order).
    in_order = sorted((row for row in stored if row.version), key=lambda row: row.seq)
    assert [row.version for row in in_order] == list(range(1, 42))


async def test_a_value_too_long_for_its_column_is_refused_not_cut(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    too_long = {**_event(stream, 2), "type": "x" * 65}  # the column holds 64
    async with engine.connect() as connection:
        await connection.begin()
        if engine.dialect.name == "postgresql":  # SQLite keeps any length: nothing to check
            with pytest.raises(DBAPIError, match="too long"):
                await _APPEND.run_many(connection, [_event(stream, 1), too_long])
        await connection.rollback()
    async with engine.connect() as connection:
        assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 0


def _renaming(insert_of: Any) -> Direct:
    """An event's title overwritten where its status is `only` (a bind that is no column, as
    in the idempotency keys' upsert); the events written."""
    upsert = insert_of(rm_event_sales)
    return Direct(
        upsert.on_conflict_do_update(
            index_elements=[rm_event_sales.c.event_id],
            set_={"title": upsert.excluded.title},
            where=rm_event_sales.c.status == bindparam("only"),
        ).returning(rm_event_sales.c.event_id)
    )


_RENAMING = {"postgresql": _renaming(pg_insert), "sqlite": _renaming(sqlite_insert)}


async def test_an_inserts_bind_that_is_no_column_is_one_value_for_all_rows(engine) -> None:  # type: ignore[no-untyped-def]
    organizer = uuid.uuid4()
    live, cancelled, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old = [
        {"event_id": live, "organizer_id": organizer, "title": "old", "status": "live"},
        {"event_id": cancelled, "organizer_id": organizer, "title": "old", "status": "cancelled"},
    ]
    renamed = [{**row, "title": "new"} for row in (*old, {**old[0], "event_id": new})]
    upsert = _RENAMING[engine.dialect.name]
    titles = select(rm_event_sales.c.event_id, rm_event_sales.c.title).where(
        rm_event_sales.c.organizer_id == organizer
    )
    async with engine.begin() as connection:
        await _SALES.run_many(connection, old)
        written = await upsert.rows_many(connection, [{**row, "only": "live"} for row in renamed])
        assert {row.event_id for row in written} == {live, new}
        assert dict((await connection.execute(titles)).all()) == {
            live: "new",
            cancelled: "old",
            new: "new",
        }
        if engine.dialect.name == "postgresql":  # one statement for all rows: one `only`
            with pytest.raises(ValueError, match="one value for all rows"):
                await upsert.rows_many(
                    connection, [{**renamed[0], "only": "live"}, {**renamed[1], "only": "x"}]
                )


async def test_writes_a_commit_left_unsent_are_never_lost_silently(engine) -> None:  # type: ignore[no-untyped-def]
    stream = uuid.uuid4()
    async with engine.connect() as connection:
        await connection.begin()
        await _APPEND.run_many(connection, later=True, many=[_event(stream, 1)])
        await connection.commit()  # without send_later: a bug in the caller
        await connection.begin()
        if engine.dialect.name == "postgresql":  # queued: the next statement says so
            with pytest.raises(RuntimeError, match="without sending them"):
                await _COUNT.one_or_none(connection, {"stream": stream})
            drop_later(connection)
            await connection.rollback()
        else:  # SQLite runs a write at once: it was stored
            assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1
            await connection.rollback()


_CLOSE = Direct(  # goes first: RETURNING the row it changed, if any
    update(rm_event_sales)
    .where(rm_event_sales.c.event_id == bindparam("event"), rm_event_sales.c.status == "live")
    .values(status="closed")
    .returning(rm_event_sales.c.event_id)
)


async def test_queued_updates_go_behind_a_first_statement_only_if_it_wrote(engine) -> None:  # type: ignore[no-untyped-def]
    """Direct.rows_first: a queued UPDATE waits for the statement's own write (a hold's
    decrement before the counters), and is left undone if it wrote nothing; a queued INSERT
    goes with it either way."""
    first, other, organizer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sales = [
        {"event_id": first, "organizer_id": uuid.uuid4(), "title": "t", "status": "live"},
        {"event_id": other, "organizer_id": organizer, "title": "t", "status": "live"},
    ]
    async with engine.begin() as connection:
        await _SALES.run_many(connection, sales)
    titles = select(rm_event_sales.c.title).where(rm_event_sales.c.organizer_id == organizer)
    for attempt, (wrote, title) in enumerate(((True, "renamed 0"), (False, "renamed 0"))):
        stream = uuid.uuid4()
        async with engine.connect() as connection:
            await connection.begin()
            if not carries_later(connection):  # SQLite runs queued writes at once: refused
                with pytest.raises(RuntimeError):
                    await _CLOSE.rows_first(connection, {"event": first})
                return
            await _APPEND.run_many(connection, later=True, many=[_event(stream, 1)])
            rename = {"organizer": organizer, "new_title": f"renamed {attempt}"}
            await _RENAME.run_many(connection, later=True, many=[rename])
            rows = await _CLOSE.rows_first(connection, {"event": first})  # "closed" the 2nd time
            assert [row.event_id for row in rows] == ([first] if wrote else [])
            await connection.commit()
        async with engine.connect() as connection:
            assert await connection.scalar(titles) == title
            assert (await _COUNT.one_or_none(connection, {"stream": stream})).n == 1
