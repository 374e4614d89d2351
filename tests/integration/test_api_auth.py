"""Accounts over HTTP: registration, login, rotating refresh tokens, logout and GET /me."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.security import Passwords
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain.model import Role

from ..builders import API, PASSWORD, account, app_bus, error_fields, problem
from ..conftest import serving


def new_email() -> str:
    return f"buyer-{uuid.uuid4().hex[:10]}@example.com"


async def register(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    return await client.post(
        f"{API}/auth/register", json={"email": email, "password": PASSWORD, **extra}
    )


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


async def token_pair(client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh account, logged in: its token pair."""
    email = new_email()
    assert (await register(client, email)).status_code == 201
    response = await log_in(client, email)
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": refresh_token})


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get(f"{API}/me", headers={"Authorization": f"Bearer {access_token}"})


async def test_register_creates_a_buyer_account(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    email = new_email()
    response = await register(client, email)
    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == {"id", "email", "role", "disabled", "created_at"}
    assert (user["email"], user["role"], user["disabled"]) == (email, "user", False)
    assert datetime.fromisoformat(user["created_at"]) == clock.now()
    uuid.UUID(user["id"])


async def test_registering_a_taken_email_is_409_whatever_its_case(
    client: httpx.AsyncClient,
) -> None:
    email = new_email()
    assert (await register(client, email)).status_code == 201
    body = problem(await register(client, email.upper()), 409)
    assert body["errors"] == [{"field": "email", "message": body["detail"]}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": None}, "password"),
        ({"nickname": "ada"}, "nickname"),
        ({"role": "admin"}, "role"),  # nobody registers themselves into a role
    ],
)
async def test_registration_refuses_bad_input_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = {"email": new_email(), "password": PASSWORD, **change}
    response = await client.post(f"{API}/auth/register", json=body)
    assert field in error_fields(response)


async def test_registration_without_a_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/register", json={"email": new_email()})
    assert error_fields(response) == {"password"}


async def test_login_returns_a_bearer_token_pair(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    response = await log_in(client, email)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert (pair["token_type"], pair["expires_in"]) == ("bearer", 900)
    assert (await me(client, pair["access_token"])).json()["email"] == email


async def test_wrong_password_and_unknown_email_get_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    email = new_email()
    await register(client, email)
    wrong_password = await log_in(client, email, "not-the-password")
    unknown_email = await log_in(client, new_email())
    assert problem(wrong_password, 401) == problem(unknown_email, 401)
    assert wrong_password.headers["www-authenticate"] == unknown_email.headers["www-authenticate"]


async def test_refresh_returns_a_new_pair_and_spends_the_old_token(
    client: httpx.AsyncClient,
) -> None:
    first = await token_pair(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert (second["token_type"], second["expires_in"]) == ("bearer", 900)
    assert second["refresh_token"] != first["refresh_token"]
    assert (await me(client, second["access_token"])).status_code == 200
    problem(await refresh(client, first["refresh_token"]), 401)


async def test_spent_refresh_token_revokes_family(client: httpx.AsyncClient) -> None:
    first = await token_pair(client)
    newest = (await refresh(client, first["refresh_token"])).json()
    problem(await refresh(client, first["refresh_token"]), 401)  # replayed: maybe stolen
    problem(await refresh(client, newest["refresh_token"]), 401)


async def test_revoking_one_family_leaves_the_users_other_sessions_alone(
    client: httpx.AsyncClient,
) -> None:
    email = new_email()
    await register(client, email)
    phone, laptop = [(await log_in(client, email)).json() for _ in range(2)]
    await refresh(client, phone["refresh_token"])
    problem(await refresh(client, phone["refresh_token"]), 401)
    assert (await refresh(client, laptop["refresh_token"])).status_code == 200


async def test_access_token_cannot_be_used_to_refresh(client: httpx.AsyncClient) -> None:
    pair = await token_pair(client)
    problem(await refresh(client, pair["access_token"]), 401)
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_refresh_token_expires_after_seven_days(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    pair = await token_pair(client)
    clock.advance(timedelta(days=7).total_seconds())
    problem(await refresh(client, pair["refresh_token"]), 401)


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    pair = await token_pair(client)
    response = await client.post(
        f"{API}/auth/logout", json={"refresh_token": pair["refresh_token"]}
    )
    assert (response.status_code, response.content) == (204, b"")
    problem(await refresh(client, pair["refresh_token"]), 401)


async def test_logout_after_a_refresh_ends_the_whole_family(client: httpx.AsyncClient) -> None:
    first = await token_pair(client)
    second = (await refresh(client, first["refresh_token"])).json()
    response = await client.post(
        f"{API}/auth/logout", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 204
    problem(await refresh(client, second["refresh_token"]), 401)


async def test_logout_with_a_forged_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/logout", json={"refresh_token": "not.a.jwt"})
    problem(response, 401)


async def test_me_returns_the_caller(client: httpx.AsyncClient) -> None:
    manager = await account(app_bus(client), Role.MANAGER)
    response = await client.get(f"{API}/me", headers=manager.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["email"], body["role"]) == (
        str(manager.actor.user_id),
        manager.email,
        "manager",
    )


async def test_me_without_a_token_is_401_with_www_authenticate(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/me")
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization", ["Bearer garbage", "Bearer ", "Basic dXNlcjpwYXNz", "garbage"]
)
async def test_me_with_a_garbage_token_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get(f"{API}/me", headers={"Authorization": authorization})
    problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_with_a_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    pair = await token_pair(client)
    problem(await me(client, pair["refresh_token"]), 401)


async def test_me_with_an_expired_access_token_is_401(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(client)
    buyer = await account(bus)
    stale = bus.deps.tokens.access_token(
        buyer.actor.user_id, Role.USER, uuid.uuid4(), clock.now() - timedelta(days=365)
    )
    assert "expired" in problem(await me(client, stale), 401)["detail"]


async def test_access_token_lives_fifteen_minutes_by_the_app_clock(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    pair = await token_pair(client)
    clock.advance(899)
    assert (await me(client, pair["access_token"])).status_code == 200
    clock.advance(1)
    problem(await me(client, pair["access_token"]), 401)


async def test_a_sign_up_and_sign_in_rush_is_answered_201_200_or_503_never_500(
    pg_settings: Settings, clock: ManualClock
) -> None:
    """200 at once against one process with a 2-connection pool: hashes take turns (one at a
    time here, each waiting at most 50 ms), no connection is held while one runs, and whoever
    does not get a turn is told to come back."""
    settings = pg_settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 0})
    passwords = Passwords(
        PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1), concurrency=1, patience=0.05
    )
    async with serving(create_app(settings, clock, passwords)) as client:
        emails = [new_email() for _ in range(200)]
        signed_up = await asyncio.gather(*(register(client, email) for email in emails))
        assert {answer.status_code for answer in signed_up} <= {201, 503}
        registered = [e for e, answer in zip(emails, signed_up, strict=True) if answer.is_success]
        assert registered, "nobody got a turn"
        logins = await asyncio.gather(
            *(
                client.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
                for email in registered
            )
        )
        assert {answer.status_code for answer in logins} <= {200, 503}
        assert any(answer.status_code == 200 for answer in logins)
        for refused in [a for a in (*signed_up, *logins) if a.status_code == 503]:
            assert int(refused.headers["retry-after"]) >= 1
            assert problem(refused, 503)["type"] == "urn:ticketflow:problem:overloaded"


class HeldVerification(Passwords):
    """Checks passwords only when the test lets them."""

    def __init__(self) -> None:
        super().__init__(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        self.checking, self.go_on = asyncio.Event(), asyncio.Event()

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.checking.set()
        await self.go_on.wait()
        return await super().verify(password_hash, password)


async def test_no_database_connection_is_held_while_a_password_is_checked(
    pg_settings: Settings, clock: ManualClock
) -> None:
    passwords = HeldVerification()
    async with serving(create_app(pg_settings, clock, passwords)) as client:
        email = new_email()
        assert (await register(client, email)).status_code == 201
        logging_in = asyncio.create_task(log_in(client, email))
        await passwords.checking.wait()
        assert app_bus(client).engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        passwords.go_on.set()
        assert (await logging_in).status_code == 200
