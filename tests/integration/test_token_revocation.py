"""Revocation: an ended session's access and refresh tokens fail at once and forever, with Redis
in front of the database or without it, and after Redis loses everything."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.revoked_sessions import MARKER, RedisRevokedSessions

from ..builders import API, PASSWORD, problem
from .conftest import DEAD_REDIS_URL, Stack, running_app


async def signed_in(client: httpx.AsyncClient, email: str | None = None) -> dict[str, Any]:
    """A token pair of a new account (or another session of `email`'s)."""
    if email is None:
        email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
        registered = await client.post(
            f"{API}/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
    response = await client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = {**response.json(), "email": email}
    return pair


async def me(client: httpx.AsyncClient, pair: dict[str, Any]) -> httpx.Response:
    return await client.get(
        f"{API}/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )


async def refresh(client: httpx.AsyncClient, pair: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})


async def log_out(client: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    response = await client.post(
        f"{API}/auth/logout", json={"refresh_token": pair["refresh_token"]}
    )
    assert response.status_code == 204, response.text


async def test_logout_revokes_the_sessions_access_token_at_once(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        pair, other = await signed_in(client), await signed_in(client)
        assert (await me(client, pair)).status_code == 200
        await log_out(client, pair)
        assert "session" in problem(await me(client, pair), 401)["detail"]
        problem(await refresh(client, pair), 401)
        assert (await me(client, other)).status_code == 200  # only that session ended


async def test_reused_refresh_token_revokes_the_family_and_its_access_tokens(
    stack: Stack, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        first = await signed_in(client)
        laptop = await signed_in(client, first["email"])  # another family of the same user
        second = (await refresh(client, first)).json()
        assert (await me(client, second)).status_code == 200
        with caplog.at_level(logging.WARNING, logger="ticketflow.security"):
            problem(await refresh(client, first), 401)  # a spent token: stolen, perhaps
        problem(await me(client, second), 401)
        problem(await me(client, first), 401)
        problem(await refresh(client, second), 401)
        assert (await me(client, laptop)).status_code == 200
        assert (await refresh(client, laptop)).status_code == 200
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ticketflow.security"]
    assert [event["event"] for event in events] == ["refresh_token_reuse"]
    assert events[0]["user_id"] == user_id_of(first)


def user_id_of(pair: dict[str, Any]) -> str:
    return str(jwt.decode(pair["access_token"], options={"verify_signature": False})["sub"])


async def test_revoked_tokens_stay_revoked_after_redis_flushall(
    redis_stack: Stack, clock: ManualClock
) -> None:
    assert redis_stack.redis_url
    async with running_app(redis_stack.settings(), clock) as app:
        client = app.client()
        ended, live = await signed_in(client), await signed_in(client)
        await log_out(client, ended)
        reused = await signed_in(client)
        await refresh(client, reused)
        await refresh(client, reused)  # reuse: this family is revoked too
        redis = Redis.from_url(redis_stack.redis_url)
        try:
            await redis.flushall()
            problem(await me(client, ended), 401)
            problem(await refresh(client, ended), 401)
            problem(await me(client, reused), 401)
            assert (await me(client, live)).status_code == 200
            # The first check after the flush put the revocations back, marker included.
            assert await redis.exists(MARKER)
            await redis.flushall()
            assert (await me(client, live)).status_code == 200
            problem(await me(client, ended), 401)
        finally:
            await redis.aclose()


async def test_a_reload_that_raced_a_flush_does_not_mark_the_cache_complete(
    redis_stack: Stack, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redis_stack.redis_url
    async with running_app(redis_stack.settings(), clock) as app:
        client = app.client()
        ended = await signed_in(client)
        await log_out(client, ended)
        revoked = app.bus.deps.revoked_sessions
        assert isinstance(revoked, RedisRevokedSessions)
        redis = Redis.from_url(redis_stack.redis_url)
        read_database = revoked._db.ended_recently

        async def flushed_meanwhile(now: datetime) -> dict[uuid.UUID, datetime]:
            found = await read_database(now)
            await redis.flushall()  # lands after the read, before the reload is published
            return found

        try:
            await redis.flushall()
            monkeypatch.setattr(revoked._db, "ended_recently", flushed_meanwhile)
            problem(await me(client, ended), 401)
            assert not await redis.exists(MARKER)  # the next check reloads again
            monkeypatch.undo()
            problem(await me(client, ended), 401)
            assert await redis.exists(MARKER)
        finally:
            await redis.aclose()


async def test_a_logout_on_one_instance_revokes_on_every_instance_sharing_redis(
    redis_stack: Stack, clock: ManualClock
) -> None:
    async with (
        running_app(redis_stack.settings(), clock) as first,
        running_app(redis_stack.settings(), clock, wipe_first=False) as second,
    ):
        pair = await signed_in(first.client())
        assert (await me(second.client(), pair)).status_code == 200
        await log_out(first.client(), pair)
        problem(await me(second.client(), pair), 401)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
async def test_embedded_instances_refuse_each_others_revoked_tokens_on_the_next_request(
    database: str, request: pytest.FixtureRequest, clock: ManualClock
) -> None:
    """Without Redis nothing but the database is shared: `serve --workers 2` on SQLite (make
    run) or on PostgreSQL must still agree at once."""
    settings = Stack(request.getfixturevalue(f"{database}_url"), None).settings()
    async with (
        running_app(settings, clock) as first,
        running_app(settings, clock, wipe_first=False) as second,
    ):
        pair = await signed_in(first.client())
        assert (await me(second.client(), pair)).status_code == 200
        await log_out(first.client(), pair)
        problem(await me(first.client(), pair), 401)
        problem(await me(second.client(), pair), 401)


async def test_with_redis_unreachable_revocations_are_read_from_the_database(
    postgresql_url: str, clock: ManualClock
) -> None:
    settings = Stack(postgresql_url, DEAD_REDIS_URL).settings()
    async with running_app(settings, clock) as app:
        client = app.client()
        ended, live = await signed_in(client), await signed_in(client)
        await log_out(client, ended)
        problem(await me(client, ended), 401)
        assert (await me(client, live)).status_code == 200


async def test_a_revoked_access_token_is_refused_before_an_idempotent_request_runs(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        pair = await signed_in(client)
        await log_out(client, pair)
        response = await client.post(
            f"{API}/bookings",
            json={"event_id": str(uuid.uuid4()), "lines": []},
            headers={"Authorization": f"Bearer {pair['access_token']}", "Idempotency-Key": "k1"},
        )
        problem(response, 401)
