"""Account lifecycle: a role change or disabling takes effect on the next request (on every
instance sharing Redis), password changes and resets end sessions, reset tokens work once and
for 30 minutes, reset requests tell nothing about the account, logout-all, the password policy."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import domain_events, password_resets
from ticketflow.cli import app as cli
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, PASSWORD, Account, account, app_bus, error_fields, problem
from .conftest import Stack, running_app
from .paid_bookings import paying_client
from .test_cli import without_our_settings
from .test_ticket_emails import EmailConsumer, SmtpServer
from .test_ticket_emails import smtp_server as smtp_server_fixture
from .test_token_revocation import me, refresh, signed_in

smtp_server = smtp_server_fixture  # the fixture, under the name tests ask for

NEW_PASSWORD = "a-new-and-long-passphrase"


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def _patch_user(
    client: httpx.AsyncClient, admin: Account, user_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"{API}/admin/users/{user_id}", json=body, headers=admin.headers)


def _user_id(pair: dict[str, Any]) -> str:
    return str(jwt.decode(pair["access_token"], options={"verify_signature": False})["sub"])


async def _log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


async def _events(bus: MessageBus, stream_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with bus.engine.connect() as connection:
        rows = await connection.execute(
            select(domain_events.c.type, domain_events.c.data)
            .where(domain_events.c.stream_id == uuid.UUID(stream_id))
            .order_by(domain_events.c.seq)
        )
        return [(row.type, row.data) for row in rows]


async def _session_endings(bus: MessageBus) -> list[str]:
    async with bus.engine.connect() as connection:
        rows = await connection.execute(
            select(domain_events.c.data).where(domain_events.c.type == "auth.session_ended")
        )
        return sorted(row.data["reason"] for row in rows)


async def test_role_change_and_disable_are_seen_by_a_second_instance_on_the_next_request(
    stack: Stack, clock: ManualClock
) -> None:
    """With Redis between the instances, and without (then only the database is shared)."""
    async with (
        running_app(stack.settings(), clock) as first,
        running_app(stack.settings(), clock, wipe_first=False) as second,
    ):
        admin = await account(first.bus, Role.ADMIN)
        pair = await signed_in(first.client())
        user_id, email = _user_id(pair), pair["email"]
        assert (await me(second.client(), pair)).status_code == 200

        promoted = await _patch_user(first.client(), admin, user_id, {"role": "manager"})
        assert promoted.json()["role"] == "manager"
        problem(await me(second.client(), pair), 401)  # minted as a buyer: refused at once
        problem(await refresh(second.client(), pair), 401)
        again = (await _log_in(second.client(), email)).json()
        assert jwt.decode(again["access_token"], options={"verify_signature": False})["role"] == (
            "manager"
        )
        assert (await me(first.client(), again)).json()["role"] == "manager"

        disabled = await _patch_user(first.client(), admin, user_id, {"disabled": True})
        assert disabled.json()["disabled"] is True
        problem(await me(second.client(), again), 401)
        problem(await refresh(second.client(), again), 401)
        refused = problem(await _log_in(second.client(), email), 401)
        assert "disabled" in refused["detail"]

        await _patch_user(second.client(), admin, user_id, {"disabled": False})
        assert (await _log_in(first.client(), email)).status_code == 200


async def test_role_change_and_disable_take_effect_on_the_next_request(
    stack: Stack, clock: ManualClock
) -> None:
    """On one instance of each stack (embedded ones included): at once, with events."""
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        admin = await account(app.bus, Role.ADMIN)
        laptop = await signed_in(client)
        phone = await signed_in(client, laptop["email"])
        user_id = _user_id(laptop)

        await _patch_user(client, admin, user_id, {"role": "manager", "disabled": True})
        for pair in (laptop, phone):
            problem(await me(client, pair), 401)
        assert "disabled" in problem(await _log_in(client, laptop["email"]), 401)["detail"]
        assert (await me(client, {"access_token": admin.token})).status_code == 200
        types = [event_type for event_type, _ in await _events(app.bus, user_id)]
        assert types == ["user.registered", "user.role_changed", "user.disabled"]
        assert await _session_endings(app.bus) == ["account_disabled"] * 2

        enabled = await _patch_user(client, admin, user_id, {"disabled": False})
        assert (enabled.json()["role"], enabled.json()["disabled"]) == ("manager", False)
        assert (await _log_in(client, laptop["email"])).status_code == 200
        assert (await _events(app.bus, user_id))[-1][0] == "user.enabled"


async def test_patching_a_user_needs_a_change_and_admins_cant_disable_themselves(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    admin, user = await account(bus, Role.ADMIN), await account(bus)
    assert error_fields(await _patch_user(client, admin, str(user.actor.user_id), {})) == {"body"}
    same = await _patch_user(client, admin, str(user.actor.user_id), {"role": "user"})
    assert same.status_code == 200  # nothing changes: the sessions live on
    assert (await client.get(f"{API}/me", headers=user.headers)).status_code == 200
    itself = await _patch_user(client, admin, str(admin.actor.user_id), {"disabled": True})
    assert "own account" in problem(itself, 409)["detail"]
    assert (await client.get(f"{API}/me", headers=admin.headers)).status_code == 200


async def test_a_password_change_ends_the_other_sessions_but_not_the_callers(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        caller = await signed_in(client)
        other = await signed_in(client, caller["email"])
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        response = await client.post(f"{API}/auth/password", json=change, headers=_bearer(caller))
        assert response.status_code == 204, response.text

        assert (await me(client, caller)).status_code == 200
        problem(await me(client, other), 401)
        problem(await refresh(client, other), 401)
        assert (await refresh(client, caller)).status_code == 200
        problem(await _log_in(client, caller["email"]), 401)
        assert (await _log_in(client, caller["email"], NEW_PASSWORD)).status_code == 200
        assert await _session_endings(app.bus) == ["password_changed"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"current_password": "not-the-password"}, "current_password"),
        ({"new_password": "qwertyuiop"}, "new_password"),  # among the most common
        ({"new_password": "too-short"}, "new_password"),
        ({"new_password": "x" * 129}, "new_password"),
    ],
)
async def test_a_password_change_refuses_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, str], field: str
) -> None:
    user = await account(app_bus(client))
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, **change}
    response = await client.post(f"{API}/auth/password", json=body, headers=user.headers)
    assert error_fields(response) == {field}
    assert (await _log_in(client, user.email)).status_code == 200  # unchanged


async def test_logout_all_ends_every_session_of_the_caller_only(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(), clock) as app:
        client = app.client()
        laptop = await signed_in(client)
        phone = await signed_in(client, laptop["email"])
        stranger = await signed_in(client)
        response = await client.post(f"{API}/auth/logout-all", headers=_bearer(phone))
        assert response.status_code == 204
        for pair in (laptop, phone):
            problem(await me(client, pair), 401)
            problem(await refresh(client, pair), 401)
        assert (await me(client, stranger)).status_code == 200
        assert await _session_endings(app.bus) == ["logout_all"] * 2


@pytest.mark.parametrize("password", ["qwertyuiop", "Password123", "short-one", "y" * 129])
async def test_registration_applies_the_password_policy(
    client: httpx.AsyncClient, password: str
) -> None:
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": password}
    assert error_fields(await client.post(f"{API}/auth/register", json=body)) == {"password"}


# Password resets


async def _request_reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(f"{API}/auth/password-reset", json={"email": email})


async def _confirm(
    client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    body = {"token": token, "new_password": password}
    return await client.post(f"{API}/auth/password-reset/confirm", json=body)


async def _reset_ids(bus: MessageBus) -> list[uuid.UUID]:
    async with bus.engine.connect() as connection:
        found = await connection.scalars(
            select(password_resets.c.id).order_by(password_resets.c.created_at)
        )
        return list(found)


async def _reset_token(client: httpx.AsyncClient, email: str) -> str:
    """Ask for a reset of `email`'s password; the token its e-mail would carry."""
    assert (await _request_reset(client, email)).status_code == 202
    bus = app_bus(client)
    return bus.deps.tokens.password_reset_token((await _reset_ids(bus))[-1])


def _unusable(response: httpx.Response) -> dict[str, Any]:
    body = problem(response, 422)
    assert body["type"] == "urn:ticketflow:problem:invalid-reset-token"
    assert [error["field"] for error in body["errors"]] == ["token"]
    return body


async def test_a_reset_request_answers_the_same_whether_or_not_the_account_exists(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    admin, known, disabled = await account(bus, Role.ADMIN), await account(bus), await account(bus)
    await bus.handle(cmd.UpdateUser(admin.actor, disabled.actor.user_id, disabled=True))
    answers = [
        await _request_reset(client, email)
        for email in (known.email, "nobody-here@example.com", disabled.email)
    ]
    assert {(answer.status_code, answer.content) for answer in answers} == {
        (202, answers[0].content)
    }
    assert len(await _reset_ids(bus)) == 1  # only the account that may sign in got one
    [(event_type, data)] = await _events(bus, str((await _reset_ids(bus))[0]))
    assert event_type == "auth.password_reset_requested"
    assert set(data) == {"user_id", "expires_at"}  # no token in the event store


async def test_a_reset_token_works_once_and_ends_every_session(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    user = await account(bus)
    token = await _reset_token(client, user.email)
    assert (await _confirm(client, token)).status_code == 204
    problem(await client.get(f"{API}/me", headers=user.headers), 401)
    problem(await _log_in(client, user.email), 401)
    assert (await _log_in(client, user.email, NEW_PASSWORD)).status_code == 200
    again = _unusable(await _confirm(client, token, "yet-another-passphrase"))
    assert "used or expired" in again["detail"]
    assert (await _log_in(client, user.email, NEW_PASSWORD)).status_code == 200
    assert await _session_endings(bus) == ["password_reset"]
    reset_events = [t for t, _ in await _events(bus, token.partition(".")[0])]
    assert reset_events == ["auth.password_reset_requested", "auth.password_reset_spent"]


async def test_a_reset_token_expires_after_30_minutes(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    user = await account(app_bus(client))
    token = await _reset_token(client, user.email)
    clock.advance(30 * 60 - 1)
    fresh = await _reset_token(client, user.email)
    clock.advance(1)
    expired = _unusable(await _confirm(client, token))
    assert (await _confirm(client, fresh)).status_code == 204
    used = _unusable(await _confirm(client, fresh))
    assert used["detail"] == expired["detail"]  # which of the two, nobody is told


async def test_forged_tokens_get_the_same_answer_as_used_ones(client: httpx.AsyncClient) -> None:
    user = await account(app_bus(client))
    token = await _reset_token(client, user.email)
    reset_id, _, mac = token.partition(".")
    tokens = app_bus(client).deps.tokens
    forged = [
        f"{reset_id}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # MAC tampered
        f"{uuid.uuid4()}.{mac}",  # another id
        tokens.password_reset_token(uuid.uuid4()),  # ours, but names no reset
        "not-a-token",
    ]
    details = {_unusable(await _confirm(client, candidate))["detail"] for candidate in forged}
    assert len(details) == 1
    assert (await _confirm(client, token)).status_code == 204


async def test_two_confirmations_racing_with_one_token_set_one_password(
    client: httpx.AsyncClient,
) -> None:
    user = await account(app_bus(client))
    token = await _reset_token(client, user.email)
    first, second = await asyncio.gather(
        _confirm(client, token, "first-new-passphrase"),
        _confirm(client, token, "second-new-passphrase"),
    )
    assert sorted([first.status_code, second.status_code]) == [204, 422]
    winner = "first-new-passphrase" if first.status_code == 204 else "second-new-passphrase"
    assert (await _log_in(client, user.email, winner)).status_code == 200


async def test_a_password_change_spends_the_reset_links_mailed_before(
    client: httpx.AsyncClient,
) -> None:
    user = await account(app_bus(client))
    token = await _reset_token(client, user.email)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (
        await client.post(f"{API}/auth/password", json=change, headers=user.headers)
    ).status_code == 204
    _unusable(await _confirm(client, token, "an-attackers-passphrase"))


async def test_a_reset_confirmation_applies_the_password_policy(
    client: httpx.AsyncClient,
) -> None:
    user = await account(app_bus(client))
    token = await _reset_token(client, user.email)
    assert error_fields(await _confirm(client, token, "1q2w3e4r5t")) == {"new_password"}
    assert (await _confirm(client, token)).status_code == 204  # the token was not spent


async def test_reset_requests_are_limited_per_address_and_per_ip(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(
        rate_limits="on",
        rate_limit_password_reset_per_account="2/hour",
        rate_limit_password_reset_per_ip="4/hour",
    )
    async with running_app(settings, clock) as app:
        client = app.client("203.0.113.7")
        statuses = [
            (await _request_reset(client, "victim@example.com")).status_code for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        assert (await _request_reset(client, "other@example.com")).status_code == 202
        problem(await _request_reset(client, "third@example.com"), 429)  # the IP's 4 used
        other_ip = app.client("203.0.113.8")
        problem(await _request_reset(other_ip, "victim@example.com"), 429)
        assert (await _request_reset(other_ip, "fourth@example.com")).status_code == 202


async def test_the_reset_mail_goes_through_the_email_consumer_with_a_working_token(
    stack: Stack, clock: ManualClock, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = smtp_server.settings(stack.settings(), public_url="https://tickets.example.org/")
    async with paying_client(settings, clock, tmp_path / "ledger.db") as client:
        bus = app_bus(client)
        user = await account(bus)
        assert (await _request_reset(client, user.email)).status_code == 202
        [mail] = await (await EmailConsumer.of(bus)).until(smtp_server.mailbox, 1)
        assert mail["To"] == user.email
        assert mail["Subject"] == "Reset your TicketFlow password"
        text = mail.get_body(("plain",))
        assert text is not None
        [link] = re.findall(r"^(https://\S+)\r?$", text.get_content(), re.MULTILINE)
        page, _, query = link.partition("?")
        assert page == "https://tickets.example.org/password-reset/confirm"  # the web page
        [token] = parse_qs(query)["token"]
        assert re.fullmatch(r"[0-9a-f-]{36}\.[\w-]{43}", token)
        assert token in text.get_content()  # for API clients too, on a line of its own
        form = await client.get(f"/password-reset/confirm?{query}")
        assert f'value="{token}"' in form.text  # the page's token field, filled in from the link
        assert (await _confirm(client, token)).status_code == 204
        assert (await _log_in(client, user.email, NEW_PASSWORD)).status_code == 200
        async with bus.engine.connect() as connection:  # nothing in the store can replay it
            stored = await connection.scalars(select(domain_events.c.data))
            assert all(token.partition(".")[2] not in str(data) for data in stored)


def test_create_admin_applies_the_password_policy(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-admin", "root@example.com", "--password-stdin"],
        input="qwertyuiop\n",
        env=without_our_settings(database_url=sqlite_url),
    )
    assert result.exit_code == 1
    assert "most common" in result.output
