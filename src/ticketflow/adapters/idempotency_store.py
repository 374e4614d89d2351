"""Stored idempotency keys: claim a key, see its first answer, record what it committed.

One repository, `IdempotencyKeys`, on one connection: the unit of work's, where a key is spent
together with the change it asked for (`uow.keys`), or a short transaction of its own for what
happens around a request (the claim before it, the answer after it; `own_transaction`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import idempotency_keys as keys

# How long an answer-less claim blocks retries before a crashed request's key can be retaken.
CLAIM_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyScope:
    """One caller's key: `Idempotency-Key` values are per user, like Stripe's per account."""

    user_id: UUID
    key: str


class KeyState(StrEnum):
    """A stored key's life: claimed by a running request, its change committed, answered."""

    IN_FLIGHT = "in_flight"
    COMMITTED = "committed"  # the change is durable; its answer not kept (yet, or ever)
    DONE = "done"  # the answer is kept: repeats replay it


class ClaimOutcome(StrEnum):
    PROCEED = "proceed"  # ours now: run the request
    REPLAY = "replay"  # answered before: send the stored answer
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_FLIGHT = "in_flight"  # the first request still runs
    LOST_ANSWER = "lost_answer"  # the first request committed but its answer was never stored


@dataclass(frozen=True)
class Answer:
    """What a request answered, kept byte for byte for its repeats."""

    status: int
    body: str
    content_type: str


@dataclass(frozen=True)
class Claim:
    """What a request learns when it claims its key."""

    outcome: ClaimOutcome
    answer: Answer | None = None  # REPLAY: the first answer
    resource_type: str | None = None  # LOST_ANSWER: what the first request made
    resource_id: UUID | None = None


@dataclass(frozen=True)
class KeyUse:
    """A request using a key: the same key with another request is refused (MISMATCH)."""

    scope: KeyScope
    method: str
    path: str
    fingerprint: str


@dataclass(frozen=True)
class Settled:
    """A key claimed and answered at once, in the transaction of the change it asked for."""

    use: KeyUse
    answer: Answer
    resource: tuple[str, UUID] | None  # what the change made (None: it was refused)


class IdempotencyKeys:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    @staticmethod
    @asynccontextmanager
    async def own_transaction(
        engine: AsyncEngine, *, wait_for_disk: bool = True
    ) -> AsyncIterator[IdempotencyKeys]:
        """The repository in a short write transaction of its own, committed on leaving.
        `wait_for_disk=False` for claims and kept answers: see `_without_waiting_for_the_disk`."""
        async with engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                if not wait_for_disk:
                    await _without_waiting_for_the_disk(connection)
                yield IdempotencyKeys(connection)

    async def claim_many(self, uses: list[KeyUse], now: datetime, ttl: timedelta) -> list[Claim]:
        """Take each request's key, or say why not (an expired key counts as never used): one
        upsert takes every new key; only keys seen before are read back and judged one by one."""
        first: dict[KeyScope, KeyUse] = {}
        for use in sorted(uses, key=_lock_order):
            first.setdefault(use.scope, use)
        taken = await self._take(
            [_key_row(u, now, ttl, KeyState.IN_FLIGHT, now + CLAIM_LEASE) for u in first.values()],
            now,
        )
        seen = [scope for scope in first if scope not in taken]
        rows = {}
        if seen:
            found = await self._connection.execute(
                select(keys).where(
                    tuple_(keys.c.user_id, keys.c.key).in_([(s.user_id, s.key) for s in seen])
                )
            )
            rows = {KeyScope(row.user_id, row.key): row for row in found}
        outcomes = []
        for use in uses:
            if use.scope in taken and first[use.scope] is use:
                outcomes.append(Claim(ClaimOutcome.PROCEED))
            elif use.scope in taken:  # a twin of a request in this very batch
                same = first[use.scope].fingerprint == use.fingerprint
                outcomes.append(Claim(ClaimOutcome.IN_FLIGHT if same else ClaimOutcome.MISMATCH))
            else:
                outcomes.append(await self._judge(rows[use.scope], use, now))
        return outcomes

    async def settle_many(
        self, settled: list[Settled], now: datetime, ttl: timedelta
    ) -> set[KeyScope]:
        """In the business transaction: take each key (new or expired) answered already, with
        its answer; the keys taken. A key in use is not: its request must be judged as
        `claim_many` judges it. Rows are taken in one order everywhere (`_lock_order`), so
        batches never deadlock."""
        if not settled:
            return set()
        rows = [
            _key_row(s.use, now, ttl, KeyState.DONE, now, s.resource, s.answer)
            for s in sorted(settled, key=lambda s: _lock_order(s.use))
        ]
        return await self._take(rows, now)

    async def mark_committed(self, spent: list[tuple[KeyScope, str, UUID]]) -> None:
        """In the business transaction: these keys' changes are durable with it (what each
        made: resource type and id), in one statement."""
        if not spent:
            return
        await _MARK_COMMITTED.run_many(
            self._connection,
            [
                {"uid": scope.user_id, "k": scope.key, "rtype": rtype, "rid": rid}
                for scope, rtype, rid in sorted(spent, key=lambda s: (s[0].user_id, s[0].key))
            ],
        )

    async def keep_answers(self, answers: list[tuple[KeyScope, Answer]]) -> None:
        """Keep each request's answer for its repeats: one statement, many keys."""
        await _KEEP_ANSWER.run_many(
            self._connection,
            [
                {
                    "uid": scope.user_id,
                    "k": scope.key,
                    "status": answer.status,
                    "body": answer.body,
                    "ctype": answer.content_type,
                }
                for scope, answer in answers
            ],
        )

    async def unused(self, scopes: list[KeyScope], now: datetime) -> list[bool]:
        """For each key, whether it has never been used (or its use expired): one read for many
        keys."""
        if self._connection.dialect.name == "postgresql":
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
        found = await self._connection.execute(query.where(keys.c.expires_at > now), params)
        used = {KeyScope(row.user_id, row.key) for row in found}
        return [scope not in used for scope in scopes]

    async def retake(self, scope: KeyScope, now: datetime) -> bool:
        """Take over a key whose request died after committing part of its work (lease run
        out). Only for requests that resume their own unfinished work (payments, refunds):
        running them again finishes the job instead of repeating it."""
        result = await self._connection.execute(
            update(keys)
            .where(
                keys.c.user_id == scope.user_id,
                keys.c.key == scope.key,
                keys.c.state != KeyState.DONE.value,
                keys.c.locked_until <= now,
            )
            .values(state=KeyState.IN_FLIGHT.value, locked_until=now + CLAIM_LEASE)
        )
        return result.rowcount == 1

    async def release(self, scope: KeyScope, now: datetime) -> None:
        """After a failure on our side (5xx): a claim that committed nothing is forgotten, so a
        retry runs again. One whose change DID commit is kept (a retry must not repeat it) but
        its lease ends now, so the retry is told at once: payments and refunds resume their own
        work, anything else answers "answer lost" with the resource it made."""
        mine = keys.c.user_id == scope.user_id, keys.c.key == scope.key
        await self._connection.execute(
            delete(keys).where(*mine, keys.c.state == KeyState.IN_FLIGHT.value)
        )
        await self._connection.execute(
            update(keys)
            .where(*mine, keys.c.state == KeyState.COMMITTED.value)
            .values(locked_until=now)
        )

    async def purge_expired(self, now: datetime) -> int:
        result = await self._connection.execute(delete(keys).where(keys.c.expires_at <= now))
        return result.rowcount

    async def _take(self, rows: list[dict[str, Any]], now: datetime) -> set[KeyScope]:
        """Insert each key row unless its key is in use (an expired key counts as never used:
        it is overwritten); the keys taken. Many parameter sets for one statement, not one
        statement with many VALUES: it is compiled once per process, and the driver sends
        the rows in one round trip."""
        taken_rows = await _TAKE[self._connection.dialect.name].rows_many(
            self._connection, [{**row, "now": now} for row in rows]
        )
        return {KeyScope(row.user_id, row.key) for row in taken_rows}

    async def _judge(self, row: Any, use: KeyUse, now: datetime) -> Claim:
        """What a request gets for a key that was used before (and has not expired)."""
        if (row.method, row.path, row.fingerprint) != (use.method, use.path, use.fingerprint):
            return Claim(ClaimOutcome.MISMATCH)
        if row.state == KeyState.DONE:
            answer = Answer(row.response_status, row.response_body, row.response_content_type)
            return Claim(ClaimOutcome.REPLAY, answer)
        if row.locked_until > now:
            return Claim(ClaimOutcome.IN_FLIGHT)
        if row.state == KeyState.COMMITTED:
            return Claim(
                ClaimOutcome.LOST_ANSWER,
                resource_type=row.resource_type,
                resource_id=row.resource_id,
            )
        # The first request died before committing anything: retake the key and run again.
        retaken = await self._connection.execute(
            update(keys)
            .where(
                keys.c.user_id == use.scope.user_id,
                keys.c.key == use.scope.key,
                keys.c.state == KeyState.IN_FLIGHT.value,
                keys.c.locked_until <= now,
            )
            .values(locked_until=now + CLAIM_LEASE)
        )
        return Claim(ClaimOutcome.PROCEED if retaken.rowcount == 1 else ClaimOutcome.IN_FLIGHT)


def _upsert_keys(insert: Any) -> Any:
    """Insert a key row unless its key is in use (an expired key counts as never used: it is
    overwritten), returning the keys taken; `now` comes with each row."""
    upsert = insert(keys)
    fresh_values = {
        c.name: upsert.excluded[c.name] for c in keys.c if c.name not in ("user_id", "key")
    }
    return upsert.on_conflict_do_update(
        index_elements=[keys.c.user_id, keys.c.key],
        set_=fresh_values,
        where=keys.c.expires_at <= bindparam("now"),
    ).returning(keys.c.user_id, keys.c.key)


# Built once and run directly (adapters/direct_sql.py): every claim, hold batch and kept answer
# runs one of these, and building the upsert cost more CPU than running it (bench/README.md).
_TAKE = {
    "postgresql": Direct(_upsert_keys(pg_insert)),
    "sqlite": Direct(_upsert_keys(sqlite_insert)),
}
_MARK_COMMITTED = Direct(
    update(keys)
    .where(
        keys.c.user_id == bindparam("uid"),
        keys.c.key == bindparam("k"),
        keys.c.state == KeyState.IN_FLIGHT.value,
    )
    .values(
        state=KeyState.COMMITTED.value,
        resource_type=bindparam("rtype"),
        resource_id=bindparam("rid"),
    )
)
_KEEP_ANSWER = Direct(
    update(keys)
    .where(keys.c.user_id == bindparam("uid"), keys.c.key == bindparam("k"))
    .values(
        state=KeyState.DONE.value,
        response_status=bindparam("status"),
        response_body=bindparam("body"),
        response_content_type=bindparam("ctype"),
    )
)


def _key_row(
    use: KeyUse,
    now: datetime,
    ttl: timedelta,
    state: KeyState,
    locked_until: datetime,
    resource: tuple[str, UUID] | None = None,
    answer: Answer | None = None,
) -> dict[str, Any]:
    return {
        "user_id": use.scope.user_id,
        "key": use.scope.key,
        "method": use.method,
        "path": use.path,
        "fingerprint": use.fingerprint,
        "state": state.value,
        "locked_until": locked_until,
        "created_at": now,
        "expires_at": now + ttl,
        "resource_type": resource[0] if resource else None,
        "resource_id": resource[1] if resource else None,
        "response_status": answer.status if answer else None,
        "response_body": answer.body if answer else None,
        "response_content_type": answer.content_type if answer else None,
    }


def _lock_order(use: KeyUse) -> tuple[UUID, str]:
    return use.scope.user_id, use.scope.key


async def _without_waiting_for_the_disk(connection: AsyncConnection) -> None:
    """Claims and kept answers commit without waiting for their WAL flush (PostgreSQL).

    Safe because neither is what makes a change durable: the change's own transaction marks the
    key `committed` and waits for its flush, and a flush covers all WAL written before it, so a
    claim is durable whenever the change it led to is. A crash can lose a claim whose change
    never committed (the retry then runs as new, correctly) or a kept answer (the retry gets
    "in flight"/"answer lost", as after any lost answer). What it saves is one disk wait on the
    way to every hold."""
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SET LOCAL synchronous_commit = off"))
