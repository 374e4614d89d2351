"""Hardening: body size limit, security headers, CORS allow-list, JWT key rotation by kid, and
no start in production with the demo secrets."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.cli import app as cli
from ticketflow.config import DEMO_JWT_SECRET, Settings
from ticketflow.domain.model import Role
from ticketflow.production_safety import UnsafeProductionSettings

from ..builders import API, PASSWORD, account, event_body, problem
from .conftest import Stack, running_app

SECRET_A, SECRET_B = "a" * 40, "b" * 40
PRODUCTION = {
    "environment": "production",
    "jwt_secret": "p" * 48,
    "payment_webhook_secret": "w" * 48,
}


@pytest.fixture
def pg(postgresql_url: str) -> Stack:
    return Stack(postgresql_url, None)


def _json_body(size: int) -> bytes:
    return json.dumps({"title": "x" * size}).encode()


async def test_a_body_over_the_limit_is_413_however_it_arrives(
    pg: Stack, clock: ManualClock
) -> None:
    async with running_app(pg.settings(max_body_bytes=1024), clock) as app:
        manager = await account(app.bus, Role.MANAGER)
        client = app.client()
        headers = {**manager.headers, "Content-Type": "application/json"}
        declared = await client.post(f"{API}/events", content=_json_body(2000), headers=headers)
        assert "1024 bytes" in problem(declared, 413)["detail"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(4):
                yield b" " * 400

        streamed = await client.post(f"{API}/events", content=chunks(), headers=headers)
        problem(streamed, 413)
        # Read by the Idempotency-Key middleware rather than the route: the same answer.
        keyed = await client.post(
            f"{API}/events", content=chunks(), headers={**headers, "Idempotency-Key": "big"}
        )
        assert problem(keyed, 413)["type"] == problem(streamed, 413)["type"]
        fits = await client.post(f"{API}/events", json=event_body(clock.now()), headers=headers)
        assert fits.status_code == 201, fits.text


async def test_json_nested_too_deep_is_400_keyed_or_not(pg: Stack, clock: ManualClock) -> None:
    async with running_app(pg.settings(), clock) as app:
        buyer = await account(app.bus)
        client = app.client()
        headers = {**buyer.headers, "Content-Type": "application/json"}
        deep = b"[" * 65_000  # recursion, not size: well under the body limit
        for path in ("/bookings", "/events"):
            for extra in ({}, {"Idempotency-Key": f"deep{path}"}):
                answer = await client.post(f"{API}{path}", content=deep, headers=headers | extra)
                problem(answer, 400)


async def test_the_default_limit_is_64_kib(pg: Stack, clock: ManualClock) -> None:
    async with running_app(pg.settings(), clock) as app:
        client = app.client()
        response = await client.post(f"{API}/auth/login", content=_json_body(64 * 1024))
        problem(response, 413)


async def test_every_answer_carries_the_security_headers(pg: Stack, clock: ManualClock) -> None:
    async with running_app(pg.settings(), clock) as app:
        client = app.client()
        for response in (
            await client.get(f"{API}/events"),
            await client.get(f"{API}/me"),  # 401
            await client.get(f"{API}/nowhere"),  # 404
            await client.get("/health"),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert "strict-transport-security" not in response.headers  # not in development
        login = await client.post(f"{API}/auth/login", json={"email": "a@b.cd", "password": "x"})
        assert login.headers["cache-control"] == "no-store"


async def test_answers_to_a_signed_in_caller_are_not_stored_by_caches(
    pg: Stack, clock: ManualClock
) -> None:
    async with running_app(pg.settings(), clock) as app:
        client = app.client()
        buyer = await account(app.bus)
        for path in ("/me", "/bookings", f"/bookings/{uuid.uuid4()}/tickets"):
            answer = await client.get(f"{API}{path}", headers=buyer.headers)
            assert answer.headers["cache-control"] == "no-store", path
        # A public read says its own policy, signed in or not: its bytes are everyone's.
        public = await client.get(f"{API}/events", headers=buyer.headers)
        assert public.headers["cache-control"].startswith("public")
        assert "cache-control" not in (await client.get("/health")).headers


async def test_swagger_ui_gets_a_policy_that_lets_it_load(pg: Stack, clock: ManualClock) -> None:
    async with running_app(pg.settings(), clock) as app:
        docs = await app.client().get("/docs")
        assert docs.status_code == 200
        policy = docs.headers["content-security-policy"]
        assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in policy
        assert "connect-src 'self'" in policy  # it fetches /openapi.json
        assert "frame-ancestors 'none'" in policy


async def test_production_answers_with_hsts(pg: Stack, clock: ManualClock) -> None:
    async with running_app(pg.settings(**PRODUCTION), clock) as app:
        response = await app.client().get(f"{API}/events")
        assert response.headers["strict-transport-security"].startswith("max-age=")


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": (
            "authorization,content-type,idempotency-key,ticketflow-admission"
        ),
    }


async def test_cors_answers_only_the_configured_origins(pg: Stack, clock: ManualClock) -> None:
    settings = pg.settings(cors_origins="https://shop.example, https://admin.example")
    async with running_app(settings, clock) as app:
        client = app.client()
        allowed = await client.options(
            f"{API}/bookings", headers=_preflight("https://shop.example")
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        assert "ticketflow-admission" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers
        other = await client.options(f"{API}/bookings", headers=_preflight("https://evil.example"))
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        simple = await client.get(f"{API}/events", headers={"Origin": "https://admin.example"})
        assert simple.headers["access-control-allow-origin"] == "https://admin.example"
        foreign = await client.get(f"{API}/events", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in foreign.headers


async def test_without_configured_origins_no_browser_origin_is_allowed(
    pg: Stack, clock: ManualClock
) -> None:
    async with running_app(pg.settings(), clock) as app:
        client = app.client()
        response = await client.get(f"{API}/events", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in response.headers
        preflight = await client.options(f"{API}/events", headers=_preflight("https://x.example"))
        assert "access-control-allow-origin" not in preflight.headers


async def _me(app_client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await app_client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})


async def test_rotated_out_kid_stops_verifying_while_kept_kids_still_do(
    pg: Stack, clock: ManualClock
) -> None:
    def keyed(keys: dict[str, str], active: str) -> Settings:
        return pg.settings(jwt_keys=keys, jwt_active_kid=active)

    async with running_app(keyed({"2026-a": SECRET_A}, "2026-a"), clock) as before:
        buyer = await account(before.bus)
        assert jwt.get_unverified_header(buyer.token)["kid"] == "2026-a"
    rotating = keyed({"2026-a": SECRET_A, "2026-b": SECRET_B}, "2026-b")
    async with running_app(rotating, clock, wipe_first=False) as during:
        client = during.client()
        assert (await _me(client, buyer.token)).status_code == 200
        login = await client.post(
            f"{API}/auth/login", json={"email": buyer.email, "password": PASSWORD}
        )
        fresh = login.json()["access_token"]
        assert jwt.get_unverified_header(fresh)["kid"] == "2026-b"
    async with running_app(keyed({"2026-b": SECRET_B}, "2026-b"), clock, wipe_first=False) as after:
        client = after.client()
        assert (await _me(client, fresh)).status_code == 200
        assert "unknown key" in problem(await _me(client, buyer.token), 401)["detail"]


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"jwt_secret": None}, "TICKETFLOW_JWT_SECRET"),
        ({"jwt_secret": DEMO_JWT_SECRET}, "TICKETFLOW_JWT_SECRET"),
        ({"payment_webhook_secret": Settings().payment_webhook_secret}, "WEBHOOK_SECRET"),
        ({"jwt_secret": "short"}, "shorter than 32"),
        ({"jwt_keys": {"old": DEMO_JWT_SECRET, "new": "n" * 40}}, "key old is unset or the demo"),
        ({"payment_webhook_secret": "CHANGE-ME"}, "webhook secret is a documented example"),
        ({"payment_webhook_secret": "w" * 31}, "webhook secret is shorter than 32"),
        ({"jwt_secret": "change-me"}, "is a documented example"),
    ],
)
def test_production_refuses_to_start_with_demo_or_weak_secrets(
    postgresql_url: str, override: dict[str, object], complaint: str
) -> None:
    values: dict[str, object] = {**PRODUCTION, "jwt_active_kid": "new", **override}
    with pytest.raises(UnsafeProductionSettings, match=complaint):
        create_app(Settings(database_url=postgresql_url, **values))


def test_production_starts_with_secrets_of_its_own(postgresql_url: str) -> None:
    create_app(Settings(database_url=postgresql_url, **PRODUCTION))


def test_serve_exits_non_zero_in_production_with_the_demo_secret(postgresql_url: str) -> None:
    env = {
        "TICKETFLOW_ENVIRONMENT": "production",
        "TICKETFLOW_DATABASE_URL": postgresql_url,
        "TICKETFLOW_JWT_SECRET": None,  # unset: the demo default
        "TICKETFLOW_PAYMENT_WEBHOOK_SECRET": "w" * 48,
    }
    result = CliRunner().invoke(cli, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 1
    assert "refusing to start in production" in result.output
    assert "TICKETFLOW_JWT_SECRET" in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "app.internal"])
def test_serve_refuses_example_secrets_on_an_address_others_can_reach(
    postgresql_url: str, host: str
) -> None:
    env = {
        "TICKETFLOW_DATABASE_URL": postgresql_url,
        "TICKETFLOW_JWT_SECRET": None,  # unset: the demo default, fine on 127.0.0.1 only
        "TICKETFLOW_PAYMENT_WEBHOOK_SECRET": "CHANGE-ME",
    }
    result = CliRunner().invoke(cli, ["serve", "--host", host, "--port", "1"], env=env)
    assert result.exit_code == 1
    assert f"refusing to serve on {host}" in result.output
    assert "JWT key" in result.output and "payment webhook secret" in result.output


def test_openapi_declares_problem_answers_for_every_api_operation(postgresql_url: str) -> None:
    schema = create_app(Settings(database_url=postgresql_url)).openapi()
    for path, operations in schema["paths"].items():
        if not path.startswith(API):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "429" in responses, f"{method} {path}"
            for status, response in responses.items():
                if int(status) >= 400:
                    content = response["content"]
                    assert set(content) == {"application/problem+json"}, f"{method} {path}"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["paths"][f"{API}/me"]["get"]["responses"]["401"]
