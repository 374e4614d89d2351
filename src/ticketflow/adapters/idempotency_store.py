"""Stored idempotency keys: claim a key, see its first answer, record what it committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Text, Uuid, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters.db import WRITE
from ticketflow.adapters.tables import idempotency_keys as keys

# How long an answer-less claim blocks retries before a crashed request's key can be retaken.
CLAIM_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyScope:
    """One caller's key: `Idempotency-Key` values are per user, like Stripe's per account."""

    user_id: UUID
    key: str


class ClaimOutcome(StrEnum):
    PROCEED = "proceed"  # ours now: run the request
    REPLAY = "replay"  # answered before: send the stored answer
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_FLIGHT = "in_flight"  # the first request still runs
    LOST_ANSWER = "lost_answer"  # the first request committed but its answer was never stored


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    status: int | None = None
    body: str | None = None
    content_type: str | None = None
    resource_type: str | None = None
    resource_id: UUID | None = None


@dataclass(frozen=True)
class ClaimRequest:
    scope: KeyScope
    method: str
    path: str
    fingerprint: str


async def claim(
    engine: AsyncEngine,
    scope: KeyScope,
    method: str,
    path: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
) -> Claim:
    """Take the key for this request, or say why not. Expired keys count as never used."""
    [claimed] = await claim_many(engine, [ClaimRequest(scope, method, path, fingerprint)], now, ttl)
    return claimed


async def claim_many(
    engine: AsyncEngine, requests: list[ClaimRequest], now: datetime, ttl: timedelta
) -> list[Claim]:
    """`claim` for many requests in one transaction: one upsert takes every new (or expired)
    key; only keys seen before are read back and judged one by one."""
    first: dict[KeyScope, ClaimRequest] = {}
    for request in sorted(requests, key=_lock_order):
        first.setdefault(request.scope, request)
    async with engine.connect() as connection:
        await connection.execution_options(**WRITE)
        async with connection.begin():
            await _without_waiting_for_the_disk(connection)
            taken = await _take(
                connection,
                [_key_row(r, now, ttl, "in_flight", now + CLAIM_LEASE) for r in first.values()],
                now,
            )
            seen = [scope for scope in first if scope not in taken]
            rows = {}
            if seen:
                found = await connection.execute(
                    select(keys).where(
                        tuple_(keys.c.user_id, keys.c.key).in_([(s.user_id, s.key) for s in seen])
                    )
                )
                rows = {KeyScope(row.user_id, row.key): row for row in found}
            outcomes = []
            for request in requests:
                if request.scope in taken and first[request.scope] is request:
                    outcomes.append(Claim(ClaimOutcome.PROCEED))
                elif request.scope in taken:  # a twin of a request in this very batch
                    same = first[request.scope].fingerprint == request.fingerprint
                    outcomes.append(
                        Claim(ClaimOutcome.IN_FLIGHT if same else ClaimOutcome.MISMATCH)
                    )
                else:
                    outcomes.append(await _judge(connection, rows[request.scope], request, now))
            return outcomes


@dataclass(frozen=True)
class Settled:
    """A key claimed and answered at once, in the transaction of the change it asked for."""

    request: ClaimRequest
    status: int
    body: str
    content_type: str
    resource: tuple[str, UUID] | None  # what the change made (None: it was refused)


async def settle_many(
    connection: AsyncConnection, settled: list[Settled], now: datetime, ttl: timedelta
) -> set[KeyScope]:
    """Inside the business transaction: take each key (new or expired) already `done`, with its
    answer; the keys taken. A key in use is not: its request must be judged as `claim` judges
    it. Rows are taken in one order everywhere (`_lock_order`), so batches never deadlock."""
    if not settled:
        return set()
    rows = [
        _key_row(s.request, now, ttl, "done", now, s.resource, s.status, s.body, s.content_type)
        for s in sorted(settled, key=lambda s: _lock_order(s.request))
    ]
    return await _take(connection, rows, now)


def _key_row(
    request: ClaimRequest,
    now: datetime,
    ttl: timedelta,
    state: str,
    locked_until: datetime,
    resource: tuple[str, UUID] | None = None,
    status: int | None = None,
    body: str | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    return {
        "user_id": request.scope.user_id,
        "key": request.scope.key,
        "method": request.method,
        "path": request.path,
        "fingerprint": request.fingerprint,
        "state": state,
        "locked_until": locked_until,
        "created_at": now,
        "expires_at": now + ttl,
        "resource_type": resource[0] if resource else None,
        "resource_id": resource[1] if resource else None,
        "response_status": status,
        "response_body": body,
        "response_content_type": content_type,
    }


async def _take(
    connection: AsyncConnection, rows: list[dict[str, Any]], now: datetime
) -> set[KeyScope]:
    """Insert each key row unless its key is in use (an expired key counts as never used: it is
    overwritten); the keys taken. Many parameter sets for one statement, not one statement with
    many VALUES: it is compiled once per process, and SQLAlchemy batches the rows itself."""
    upsert = _insert_for(connection.dialect.name)(keys)
    fresh_values = {
        c.name: upsert.excluded[c.name] for c in keys.c if c.name not in ("user_id", "key")
    }
    taken_rows = await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=[keys.c.user_id, keys.c.key],
            set_=fresh_values,
            where=keys.c.expires_at <= now,
        ).returning(keys.c.user_id, keys.c.key),
        rows,
    )
    return {KeyScope(row.user_id, row.key) for row in taken_rows}


def _lock_order(request: ClaimRequest) -> tuple[UUID, str]:
    return request.scope.user_id, request.scope.key


async def unused(engine: AsyncEngine, scopes: list[KeyScope], now: datetime) -> list[bool]:
    """For each key, whether it has never been used (or its use expired): read only, one query
    for many keys."""
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Two arrays, not a list of pairs: one statement text whatever the count, so it is
            # compiled and prepared once, not once per batch size (a sell-out asks thousands).
            asked = (
                func.unnest(
                    bindparam("user_ids", type_=ARRAY(Uuid)), bindparam("keys", type_=ARRAY(Text))
                )
                .table_valued("user_id", "key")
                .render_derived()
            )
            query = select(keys.c.user_id, keys.c.key).join(
                asked, (keys.c.user_id == asked.c.user_id) & (keys.c.key == asked.c.key)
            )
            params = {"user_ids": [s.user_id for s in scopes], "keys": [s.key for s in scopes]}
        else:
            pairs = [(s.user_id, s.key) for s in scopes]
            query = select(keys.c.user_id, keys.c.key).where(
                tuple_(keys.c.user_id, keys.c.key).in_(pairs)
            )
            params = {}
        found = await connection.execute(query.where(keys.c.expires_at > now), params)
        used = {KeyScope(row.user_id, row.key) for row in found}
    return [scope not in used for scope in scopes]


async def _without_waiting_for_the_disk(connection: AsyncConnection) -> None:
    """Claims and stored answers commit without waiting for their WAL flush (PostgreSQL).

    Safe because neither is what makes a change durable: the change's own transaction marks the
    key `committed` and waits for its flush, and a flush covers all WAL written before it, so a
    claim is durable whenever the change it led to is. A crash can lose a claim whose change
    never committed (the retry then runs as new, correctly) or a stored answer (the retry gets
    "in flight"/"answer lost", as after any lost answer). What it saves is one disk wait on the
    way to every hold."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SET LOCAL synchronous_commit = off"))


def _insert_for(dialect: str) -> Any:
    return sqlite_insert if dialect == "sqlite" else pg_insert


async def _judge(
    connection: AsyncConnection, row: Any, request: ClaimRequest, now: datetime
) -> Claim:
    """What a request gets for a key that was used before (and has not expired)."""
    if (row.method, row.path, row.fingerprint) != (
        request.method,
        request.path,
        request.fingerprint,
    ):
        return Claim(ClaimOutcome.MISMATCH)
    if row.state == "done":
        return Claim(
            ClaimOutcome.REPLAY, row.response_status, row.response_body, row.response_content_type
        )
    if row.locked_until > now:
        return Claim(ClaimOutcome.IN_FLIGHT)
    if row.state == "committed":
        return Claim(
            ClaimOutcome.LOST_ANSWER, resource_type=row.resource_type, resource_id=row.resource_id
        )
    # The first request died before committing anything: retake the key and run again.
    retaken = await connection.execute(
        update(keys)
        .where(
            keys.c.user_id == request.scope.user_id,
            keys.c.key == request.scope.key,
            keys.c.state == "in_flight",
            keys.c.locked_until <= now,
        )
        .values(locked_until=now + CLAIM_LEASE)
    )
    return Claim(ClaimOutcome.PROCEED if retaken.rowcount == 1 else ClaimOutcome.IN_FLIGHT)


async def retake(engine: AsyncEngine, scope: KeyScope, now: datetime) -> bool:
    """Take over a key whose request died after committing part of its work (lease run out).

    Only for requests that resume their own unfinished work (payments, refunds): running them
    again finishes the job instead of repeating it.
    """
    async with engine.begin() as connection:
        result = await connection.execute(
            update(keys)
            .where(
                keys.c.user_id == scope.user_id,
                keys.c.key == scope.key,
                keys.c.state != "done",
                keys.c.locked_until <= now,
            )
            .values(state="in_flight", locked_until=now + CLAIM_LEASE)
        )
        return result.rowcount == 1


async def mark_committed(
    connection: AsyncConnection, scope: KeyScope, resource_type: str, resource_id: UUID
) -> None:
    """Inside the business transaction: the key's change is now durable with it."""
    await mark_many_committed(connection, [(scope, resource_type, resource_id)])


async def mark_many_committed(
    connection: AsyncConnection, spent: list[tuple[KeyScope, str, UUID]]
) -> None:
    """`mark_committed` for the keys of a whole batch, in one statement."""
    if not spent:
        return
    await connection.execute(
        update(keys)
        .where(
            keys.c.user_id == bindparam("uid"),
            keys.c.key == bindparam("k"),
            keys.c.state == "in_flight",
        )
        .values(state="committed", resource_type=bindparam("rtype"), resource_id=bindparam("rid")),
        [
            {"uid": scope.user_id, "k": scope.key, "rtype": rtype, "rid": rid}
            for scope, rtype, rid in sorted(spent, key=lambda s: (s[0].user_id, s[0].key))
        ],
    )


@dataclass(frozen=True)
class Answer:
    scope: KeyScope
    status: int
    body: str
    content_type: str


async def store_answer(
    engine: AsyncEngine, scope: KeyScope, status: int, body: str, content_type: str
) -> None:
    await store_answers(engine, [Answer(scope, status, body, content_type)])


async def store_answers(engine: AsyncEngine, answers: list[Answer]) -> list[None]:
    """Keep each request's answer for its replays: one statement, one transaction, many keys."""
    async with engine.begin() as connection:
        await _without_waiting_for_the_disk(connection)
        await connection.execute(
            update(keys)
            .where(keys.c.user_id == bindparam("uid"), keys.c.key == bindparam("k"))
            .values(
                state="done",
                response_status=bindparam("status"),
                response_body=bindparam("body"),
                response_content_type=bindparam("ctype"),
            ),
            [
                {
                    "uid": a.scope.user_id,
                    "k": a.scope.key,
                    "status": a.status,
                    "body": a.body,
                    "ctype": a.content_type,
                }
                for a in answers
            ],
        )
    return [None] * len(answers)


async def release(engine: AsyncEngine, scope: KeyScope, now: datetime) -> None:
    """After a failure on our side (5xx): a claim that committed nothing is forgotten, so a
    retry runs again. One whose change DID commit is kept (a retry must not repeat it) but its
    lease ends now, so the retry is told at once: payments and refunds resume their own work,
    anything else answers "answer lost" with the resource it made.
    """
    mine = keys.c.user_id == scope.user_id, keys.c.key == scope.key
    async with engine.begin() as connection:
        await connection.execute(delete(keys).where(*mine, keys.c.state == "in_flight"))
        await connection.execute(
            update(keys).where(*mine, keys.c.state == "committed").values(locked_until=now)
        )


async def purge_expired(engine: AsyncEngine, now: datetime) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(delete(keys).where(keys.c.expires_at <= now))
        return result.rowcount
