"""Stored idempotency keys: claim a key, see its first answer, record what it committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
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
    async with engine.connect() as connection:
        await connection.execution_options(**WRITE)
        async with connection.begin():
            mine = keys.c.user_id == scope.user_id, keys.c.key == scope.key
            await connection.execute(delete(keys).where(*mine, keys.c.expires_at <= now))
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        insert(keys).values(
                            user_id=scope.user_id,
                            key=scope.key,
                            method=method,
                            path=path,
                            fingerprint=fingerprint,
                            state="in_flight",
                            locked_until=now + CLAIM_LEASE,
                            created_at=now,
                            expires_at=now + ttl,
                        )
                    )
                return Claim(ClaimOutcome.PROCEED)
            except IntegrityError:
                pass
            row = (await connection.execute(select(keys).where(*mine))).one()
            if (row.method, row.path, row.fingerprint) != (method, path, fingerprint):
                return Claim(ClaimOutcome.MISMATCH)
            if row.state == "done":
                return Claim(
                    ClaimOutcome.REPLAY,
                    row.response_status,
                    row.response_body,
                    row.response_content_type,
                )
            if row.locked_until > now:
                return Claim(ClaimOutcome.IN_FLIGHT)
            if row.state == "committed":
                return Claim(
                    ClaimOutcome.LOST_ANSWER,
                    resource_type=row.resource_type,
                    resource_id=row.resource_id,
                )
            # The first request died before committing anything: retake the key and run again.
            retaken = await connection.execute(
                update(keys)
                .where(*mine, keys.c.state == "in_flight", keys.c.locked_until <= now)
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
    await connection.execute(
        update(keys)
        .where(
            keys.c.user_id == scope.user_id, keys.c.key == scope.key, keys.c.state == "in_flight"
        )
        .values(state="committed", resource_type=resource_type, resource_id=resource_id)
    )


async def store_answer(
    engine: AsyncEngine, scope: KeyScope, status: int, body: str, content_type: str
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(keys)
            .where(keys.c.user_id == scope.user_id, keys.c.key == scope.key)
            .values(
                state="done",
                response_status=status,
                response_body=body,
                response_content_type=content_type,
            )
        )


async def release(engine: AsyncEngine, scope: KeyScope) -> None:
    """Forget a claim whose request failed on our side (5xx), so that a retry runs again.

    Safe even when part of the work committed: handlers that commit before they can fail
    (payments) resume their own unfinished work on the retry instead of repeating it.
    """
    async with engine.begin() as connection:
        await connection.execute(
            delete(keys).where(keys.c.user_id == scope.user_id, keys.c.key == scope.key)
        )


async def purge_expired(engine: AsyncEngine, now: datetime) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(delete(keys).where(keys.c.expires_at <= now))
        return result.rowcount
