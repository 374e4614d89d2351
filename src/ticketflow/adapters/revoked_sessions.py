"""Revoked sessions: once a session ends, its access tokens stop working at once, everywhere.

The database (`auth_sessions.ended_at`) is the record. A cache in front of it answers the question
every authenticated request asks, without a query. In Redis (shared by all processes) each revoked
session is a key that lives as long as the session's access tokens can, and a marker key says
"this cache holds every revocation of the database". A flushed or restarted Redis has lost the
marker, so the next check reloads the revocations from the database before it answers. The marker
also lapses every `resync` seconds: that bounds how long a revocation whose Redis write failed
(Redis unreachable at logout) can go unseen. Without Redis the database answers every check
(one indexed lookup, shared by the checks in flight together): the processes of an embedded
setup share nothing else, and a revocation (a logout, a disabled account, a role change) must
hold on every one of them from the next request on.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.adapters.single_flight import SingleFlight
from ticketflow.adapters.user_repository import SessionRepository

log = logging.getLogger(__name__)

MARKER = "ticketflow:revocations:loaded"
RELOAD_LOCK = "ticketflow:revocations:reloading"
RELOAD_LOCK_SECONDS = 30  # a reloader that dies frees the lock by then

# Publishes a reload only if Redis was not flushed since it began (the flush took the lock along):
# a reload that read the database before a revocation must not mark an emptied cache as complete.
# KEYS: lock, marker, revoked keys...; ARGV: lock token, marker ttl, one ttl per revoked key.
_PUBLISH_RELOAD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[i]) end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
redis.call('DEL', KEYS[1])
return 1
"""


class RevokedSessions(Protocol):
    async def revoke(self, session_id: UUID, ended_at: datetime) -> None: ...

    async def is_revoked(self, session_id: UUID) -> bool: ...


def _key(session_id: UUID) -> str:
    return f"ticketflow:revoked-session:{session_id}"


class _Database:
    """The record the caches are rebuilt from."""

    def __init__(self, engine: AsyncEngine, access_ttl: timedelta) -> None:
        self._engine = engine
        self.access_ttl = access_ttl

    async def ended_recently(self, now: datetime) -> dict[UUID, datetime]:
        """Sessions ended so recently that some access token of theirs may still be valid."""
        async with self._engine.connect() as connection:
            return await SessionRepository(connection).ended_since(now - self.access_ttl)

    async def has_ended(self, session_id: UUID) -> bool:
        async with self._engine.connect() as connection:
            return await SessionRepository(connection).has_ended(session_id)

    async def ended_among(self, session_ids: list[UUID]) -> set[UUID]:
        async with self._engine.connect() as connection:
            return await SessionRepository(connection).ended_among(session_ids)


class RedisRevokedSessions:
    def __init__(
        self, redis: Redis, engine: AsyncEngine, clock: Clock, access_ttl: timedelta, resync: float
    ) -> None:
        self._redis = redis
        self._db = _Database(engine, access_ttl)
        self._clock = clock
        self._resync = max(1, math.ceil(resync))
        self._publish_reload = redis.register_script(_PUBLISH_RELOAD)
        # Every authenticated request asks; concurrent ones share a round trip.
        self._lookups: MicroBatcher[UUID, bool | None] = MicroBatcher(self._lookup, 1000)
        self._reloads: SingleFlight[str, set[UUID]] = SingleFlight()

    def _seconds_left(self, ended_at: datetime, now: datetime) -> int:
        """How long the session's newest access token may still live (none is minted after)."""
        return math.ceil((ended_at + self._db.access_ttl - now).total_seconds())

    async def revoke(self, session_id: UUID, ended_at: datetime) -> None:
        seconds = self._seconds_left(ended_at, self._clock.now())
        if seconds <= 0:
            return
        try:
            await self._redis.set(_key(session_id), b"1", ex=seconds)
        except RedisError:
            log.warning(
                "revocations: Redis unreachable; session %s is revoked in the database and "
                "reaches the cache within %ss",
                session_id,
                self._resync,
            )

    async def _lookup(self, session_ids: list[UUID]) -> list[bool | Exception | None]:
        """One MGET for the sessions of every request checking now: revoked, not, or None when
        the cache is not loaded (the marker is missing)."""
        loaded, *revoked = await self._redis.mget(MARKER, *map(_key, session_ids))
        return [True if hit is not None else (False if loaded else None) for hit in revoked]

    async def is_revoked(self, session_id: UUID) -> bool:
        try:
            revoked = await self._lookups.submit(session_id)
            if revoked is not None:
                return revoked
            # Not loaded (flushed, or the marker lapsed): every request in flight finds out at
            # once, and one reload answers them all.
            ended = await self._reloads.run("reload", self._reload)
        except RedisError:
            log.warning("revocations: Redis unreachable, asking the database")
            ended = None
        if ended is not None:
            return session_id in ended
        return await self._db.has_ended(session_id)

    async def _reload(self) -> set[UUID]:
        """The database's recent revocations, copied into Redis unless another process is
        copying them already (then only this process's waiting requests are answered)."""
        token = uuid.uuid4().hex
        publishing = await self._redis.set(RELOAD_LOCK, token, nx=True, ex=RELOAD_LOCK_SECONDS)
        now = self._clock.now()
        ended = await self._db.ended_recently(now)
        if publishing:
            live = {sid: self._seconds_left(at, now) for sid, at in ended.items()}
            live = {sid: seconds for sid, seconds in live.items() if seconds > 0}
            published = await self._publish_reload(
                keys=[RELOAD_LOCK, MARKER, *(_key(sid) for sid in live)],
                args=[token, self._resync, *live.values()],
            )
            log.info(
                "revocations: reloaded %d from the database (published: %s)", len(live), published
            )
        return set(ended)


class DatabaseRevokedSessions:
    """The embedded mode: the database is asked every time, so every process sharing it agrees
    at once; the checks of the requests in flight together share one query."""

    def __init__(self, engine: AsyncEngine, access_ttl: timedelta) -> None:
        self._db = _Database(engine, access_ttl)
        self._lookups: MicroBatcher[UUID, bool] = MicroBatcher(self._lookup, 1000)

    async def revoke(self, session_id: UUID, ended_at: datetime) -> None:
        """Nothing to copy: the ended session is in the database already."""

    async def is_revoked(self, session_id: UUID) -> bool:
        return await self._lookups.submit(session_id)

    async def _lookup(self, session_ids: list[UUID]) -> list[bool | Exception]:
        ended = await self._db.ended_among(session_ids)
        return [session_id in ended for session_id in session_ids]


def revoked_sessions_for(
    redis: Redis | None, engine: AsyncEngine, clock: Clock, access_ttl: timedelta, resync: float
) -> RevokedSessions:
    if redis is None:
        return DatabaseRevokedSessions(engine, access_ttl)
    return RedisRevokedSessions(redis, engine, clock, access_ttl, resync)
