"""The sandbox payment provider: charges, refunds, idempotency, injected faults and webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.deps import Provider
from ticketflow.payment_provider.faults import Faults
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.payment_provider.signing import sign, verify

from ..e2e.servers import running_provider

WEBHOOK_URL = "http://receiver.test/webhooks"
WEBHOOK_SECRET = "whsec_test_only"

Json = dict[str, Any]
WebhookHandler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def charge_body(**overrides: object) -> Json:
    return {
        "amount_minor": 2500,
        "currency": "EUR",
        "payment_method": "pm_card_visa",
        "reference": "booking-1",
        **overrides,
    }


def key_header(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def charge(client: httpx.AsyncClient, key: str, **overrides: object) -> httpx.Response:
    return await client.post("/v1/charges", json=charge_body(**overrides), headers=key_header(key))


async def refund(
    client: httpx.AsyncClient, key: str, charge_id: str, amount_minor: int | None = None
) -> httpx.Response:
    body = {"charge_id": charge_id, "amount_minor": amount_minor}
    return await client.post("/v1/refunds", json=body, headers=key_header(key))


async def ledger(client: httpx.AsyncClient, path: str = "/v1/charges", **query: str) -> list[Json]:
    answer = await client.get(path, params=query)
    assert answer.status_code == 200, answer.text
    items: list[Json] = answer.json()["items"]
    return items


async def set_faults(client: httpx.AsyncClient, **faults: object) -> None:
    answer = await client.put("/_sandbox/faults", json=faults)
    assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def provider_client(
    settings: ProviderSettings, webhook_client: httpx.AsyncClient | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Provider]]:
    """The provider in-process (its lifespan run) and an httpx client calling it."""
    app: FastAPI = create_provider_app(settings, webhook_client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://provider") as client:
            yield client, app.state.provider


def settings_in(directory: Path, **overrides: Any) -> ProviderSettings:
    # Explicit faults: a TICKETFLOW_PROVIDER_FAULTS in the shell must not leak into tests.
    return ProviderSettings(ledger=directory / "ledger.db", faults=Faults(), **overrides)


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with provider_client(settings_in(tmp_path)) as (client, _):
        yield client


# --- charges -------------------------------------------------------------------------------


async def test_successful_charge_is_recorded(provider: httpx.AsyncClient) -> None:
    answer = await charge(provider, "key-1", currency="eur")
    assert answer.status_code == 201
    created = answer.json()
    assert created["id"].startswith("ch_")
    assert created["currency"] == "EUR"
    assert (created["status"], created["decline_reason"], created["refunded_minor"]) == (
        "succeeded",
        None,
        0,
    )
    assert "idempotent-replayed" not in answer.headers
    assert (await provider.get(f"/v1/charges/{created['id']}")).json() == created
    assert await ledger(provider, reference="booking-1") == [created]
    assert await ledger(provider, reference="another-booking") == []


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [("pm_card_declined", "card_declined"), ("pm_card_insufficient_funds", "insufficient_funds")],
)
async def test_declined_charge_is_recorded_and_answered_402(
    provider: httpx.AsyncClient, payment_method: str, reason: str
) -> None:
    answer = await charge(provider, "key-1", payment_method=payment_method)
    assert answer.status_code == 402
    assert (answer.json()["status"], answer.json()["decline_reason"]) == ("declined", reason)
    replay = await charge(provider, "key-1", payment_method=payment_method)
    assert (replay.status_code, replay.json()) == (402, answer.json())
    assert await ledger(provider) == [answer.json()]


async def test_same_key_replays_the_same_charge(provider: httpx.AsyncClient) -> None:
    first = await charge(provider, "key-1")
    again = await charge(provider, "key-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert await ledger(provider) == [first.json()]
    assert await ledger(provider, idempotency_key="key-1") == [first.json()]
    assert await ledger(provider, idempotency_key="key-2") == []


@pytest.mark.parametrize(
    "changed",
    [
        {"amount_minor": 2501},
        {"currency": "USD"},
        {"payment_method": "pm_card_mastercard"},
        {"reference": "booking-2"},
    ],
)
async def test_same_key_with_other_parameters_is_refused(
    provider: httpx.AsyncClient, changed: Json
) -> None:
    first = await charge(provider, "key-1")
    answer = await charge(provider, "key-1", **changed)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(":idempotency-key-reused")
    assert await ledger(provider) == [first.json()]


async def test_charge_without_idempotency_key_is_refused(provider: httpx.AsyncClient) -> None:
    answer = await provider.post("/v1/charges", json=charge_body())
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert await ledger(provider) == []


@pytest.mark.parametrize(
    "invalid",
    [{"amount_minor": 0}, {"amount_minor": "100"}, {"currency": "EURO"}, {"payment_method": ""}],
)
async def test_invalid_charge_is_refused(provider: httpx.AsyncClient, invalid: Json) -> None:
    answer = await charge(provider, "key-1", **invalid)
    assert answer.status_code == 422
    assert answer.json()["errors"]
    assert await ledger(provider) == []


async def test_concurrent_charges_with_one_key_record_one_charge(
    provider: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(*(charge(provider, "one-key") for _ in range(50)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["id"] for answer in answers}) == 1
    originals = [answer for answer in answers if "idempotent-replayed" not in answer.headers]
    assert len(originals) == 1
    assert len(await ledger(provider)) == 1


async def test_unknown_charge_is_not_found(provider: httpx.AsyncClient) -> None:
    answer = await provider.get("/v1/charges/ch_nothing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


# --- refunds -------------------------------------------------------------------------------


async def test_partial_then_full_refund(provider: httpx.AsyncClient) -> None:
    charged = (await charge(provider, "charge-1")).json()
    partial = await refund(provider, "refund-1", charged["id"], 1000)
    assert partial.status_code == 201
    assert partial.json()["id"].startswith("re_")
    assert (partial.json()["amount_minor"], partial.json()["status"]) == (1000, "succeeded")
    rest = await refund(provider, "refund-2", charged["id"])
    assert (rest.status_code, rest.json()["amount_minor"]) == (201, 1500)
    assert (await provider.get(f"/v1/charges/{charged['id']}")).json()["refunded_minor"] == 2500
    nothing_left = await refund(provider, "refund-3", charged["id"])
    assert nothing_left.status_code == 409
    refunds = await ledger(provider, "/v1/refunds", charge_id=charged["id"])
    assert refunds == [partial.json(), rest.json()]


async def test_refund_of_more_than_is_left_is_refused(provider: httpx.AsyncClient) -> None:
    charged = (await charge(provider, "charge-1")).json()
    assert (await refund(provider, "refund-1", charged["id"], 2000)).status_code == 201
    over = await refund(provider, "refund-2", charged["id"], 501)
    assert over.status_code == 409
    assert over.headers["content-type"] == "application/problem+json"
    assert (await provider.get(f"/v1/charges/{charged['id']}")).json()["refunded_minor"] == 2000
    assert len(await ledger(provider, "/v1/refunds")) == 1


async def test_declined_or_unknown_charge_cannot_be_refunded(provider: httpx.AsyncClient) -> None:
    declined = (await charge(provider, "charge-1", payment_method="pm_card_declined")).json()
    assert (await refund(provider, "refund-1", declined["id"])).status_code == 409
    assert (await refund(provider, "refund-2", "ch_nothing")).status_code == 404
    assert await ledger(provider, "/v1/refunds") == []


async def test_same_key_replays_the_same_refund(provider: httpx.AsyncClient) -> None:
    charged = (await charge(provider, "charge-1")).json()
    first = await refund(provider, "refund-1", charged["id"], 1000)
    again = await refund(provider, "refund-1", charged["id"], 1000)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert (await refund(provider, "refund-1", charged["id"], 999)).status_code == 422
    assert (await refund(provider, "refund-1", charged["id"])).status_code == 422
    assert (await provider.get(f"/v1/charges/{charged['id']}")).json()["refunded_minor"] == 1000
    assert await ledger(provider, "/v1/refunds") == [first.json()]


async def test_concurrent_refunds_never_exceed_the_charge(provider: httpx.AsyncClient) -> None:
    charged = (await charge(provider, "charge-1")).json()
    answers = await asyncio.gather(
        *(refund(provider, f"refund-{n}", charged["id"], 500) for n in range(20))
    )
    assert sorted(answer.status_code for answer in answers) == [201] * 5 + [409] * 15
    assert (await provider.get(f"/v1/charges/{charged['id']}")).json()["refunded_minor"] == 2500


# --- injected faults -----------------------------------------------------------------------


async def test_failure_fault_answers_503_and_records_nothing(provider: httpx.AsyncClient) -> None:
    await set_faults(provider, failure_rate=1)
    answer = await charge(provider, "key-1")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert await ledger(provider) == []


async def test_lost_response_fault_records_the_charge_and_a_retry_returns_it(
    provider: httpx.AsyncClient,
) -> None:
    await set_faults(provider, lost_response_rate=1)
    lost = await charge(provider, "key-1")
    assert lost.status_code == 500
    [recorded] = await ledger(provider, idempotency_key="key-1")
    assert (await provider.post("/_sandbox/reset")).json() == Faults().model_dump()
    retry = await charge(provider, "key-1")
    assert (retry.status_code, retry.json()) == (201, recorded)
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(await ledger(provider)) == 1


async def test_down_provider_refuses_every_v1_request(provider: httpx.AsyncClient) -> None:
    await set_faults(provider, down=True)
    assert (await charge(provider, "key-1")).status_code == 503
    assert (await provider.get("/v1/charges")).status_code == 503
    assert (await provider.get("/health")).status_code == 200
    assert (await provider.get("/_sandbox/faults")).json()["down"] is True
    await provider.post("/_sandbox/reset")
    assert await ledger(provider) == []


async def test_latency_fault_delays_answers(provider: httpx.AsyncClient) -> None:
    await set_faults(provider, latency_ms=100)
    started = time.perf_counter()
    await provider.get("/v1/charges")
    assert time.perf_counter() - started >= 0.1


async def test_seeded_faults_repeat_exactly(provider: httpx.AsyncClient) -> None:
    async def statuses(run: str) -> list[int]:
        await set_faults(provider, failure_rate=0.5, seed=1234)
        return [(await charge(provider, f"{run}-{n}")).status_code for n in range(20)]

    first, second = await statuses("first"), await statuses("second")
    assert first == second
    assert set(first) == {201, 503}
    assert len(await ledger(provider)) == 2 * first.count(201)


@pytest.mark.parametrize(
    "invalid",
    [{"failure_rate": 1.5}, {"latency_ms": -1}, {"timeout_rate": -0.1}, {"flaky": True}],
)
async def test_invalid_faults_are_refused(provider: httpx.AsyncClient, invalid: Json) -> None:
    assert (await provider.put("/_sandbox/faults", json=invalid)).status_code == 422
    assert (await provider.get("/_sandbox/faults")).json() == Faults().model_dump()


async def test_faults_can_be_given_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_PROVIDER_FAULTS", json.dumps({"down": True, "latency_ms": 5}))
    monkeypatch.setenv("TICKETFLOW_PROVIDER_LEDGER", str(tmp_path / "from-env.db"))
    async with provider_client(ProviderSettings()) as (client, _):
        faults = (await client.get("/_sandbox/faults")).json()
        assert (faults["down"], faults["latency_ms"]) == (True, 5)
        assert (await charge(client, "key-1")).status_code == 503
    assert (tmp_path / "from-env.db").exists()


# --- webhooks ------------------------------------------------------------------------------


def webhook_receiver(
    received: list[httpx.Request], answer: WebhookHandler | None = None
) -> httpx.AsyncClient:
    """An httpx client whose every request lands in `received` (answered 200 by default)."""

    async def handle(request: httpx.Request) -> httpx.Response:
        await request.aread()
        received.append(request)
        return await answer(request) if answer else httpx.Response(200)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def webhook_settings(directory: Path) -> ProviderSettings:
    return settings_in(
        directory,
        webhook_url=WEBHOOK_URL,
        webhook_secret=WEBHOOK_SECRET,
        webhook_backoff_seconds=0,
    )


async def test_each_recorded_charge_and_refund_sends_a_signed_webhook(tmp_path: Path) -> None:
    received: list[httpx.Request] = []
    async with (
        webhook_receiver(received) as receiver,
        provider_client(webhook_settings(tmp_path), receiver) as (client, parts),
    ):
        charged = (await charge(client, "charge-1")).json()
        declined = (await charge(client, "charge-2", payment_method="pm_card_declined")).json()
        refunded = (await refund(client, "refund-1", charged["id"], 100)).json()
        await charge(client, "charge-1")  # a replay records nothing, so it sends nothing
        await parts.webhooks.drain()
    events = [json.loads(request.content) for request in received]
    assert [(event["type"], event["data"]) for event in events] == [
        ("charge.succeeded", charged),
        ("charge.declined", declined),
        ("refund.succeeded", refunded),
    ]
    assert all(event["id"].startswith("evt_") for event in events)
    for request in received:
        assert str(request.url) == WEBHOOK_URL
        header = request.headers["provider-signature"]
        assert verify(WEBHOOK_SECRET, request.content, header, now=int(time.time()))


async def test_failed_webhook_deliveries_are_retried(tmp_path: Path) -> None:
    received: list[httpx.Request] = []
    failures: list[httpx.Response | Exception] = [
        httpx.Response(500),
        httpx.ConnectError("receiver restarting"),
    ]

    async def fail_twice(request: httpx.Request) -> httpx.Response:
        if not failures:
            return httpx.Response(204)
        failure = failures.pop(0)
        if isinstance(failure, Exception):
            raise failure
        return failure

    async with (
        webhook_receiver(received, fail_twice) as receiver,
        provider_client(webhook_settings(tmp_path), receiver) as (client, parts),
    ):
        await charge(client, "charge-1")
        await parts.webhooks.drain()
    assert len(received) == 3
    assert len({json.loads(request.content)["id"] for request in received}) == 1


async def test_slow_webhook_receiver_does_not_delay_the_answer(tmp_path: Path) -> None:
    received: list[httpx.Request] = []
    release = asyncio.Event()

    async def wait_for_release(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    async with (
        webhook_receiver(received, wait_for_release) as receiver,
        provider_client(webhook_settings(tmp_path), receiver) as (client, parts),
    ):
        assert (await charge(client, "charge-1")).status_code == 201  # answered while it waits
        release.set()
        await parts.webhooks.drain()
    assert len(received) == 1


def test_signature_round_trip() -> None:
    body = b'{"id": "evt_1"}'
    header = sign(WEBHOOK_SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(WEBHOOK_SECRET, body, header, now=1_700_000_000 + 300)
    rotated = f"{header},v1={'0' * 64}"  # an old secret's signature next to the current one
    assert verify(WEBHOOK_SECRET, body, rotated, now=1_700_000_000)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        (WEBHOOK_SECRET, b'{"id": "evt_2"}', 1_700_000_000),  # tampered body
        (WEBHOOK_SECRET, b'{"id": "evt_1"}', 1_700_000_301),  # stale
        (WEBHOOK_SECRET, b'{"id": "evt_1"}', 1_699_999_699),  # from the future
        ("whsec_other", b'{"id": "evt_1"}', 1_700_000_000),  # wrong secret
    ],
)
def test_signature_rejects_tampering_staleness_and_wrong_secret(
    secret: str, body: bytes, now: int
) -> None:
    header = sign(WEBHOOK_SECRET, b'{"id": "evt_1"}', 1_700_000_000)
    assert not verify(secret, body, header, now=now)


@pytest.mark.parametrize(
    "header", ["", "t=1700000000", "v1=abc", "t=soon,v1=abc", "t=1700000000,v1=é"]
)
def test_signature_rejects_malformed_headers(header: str) -> None:
    assert not verify(WEBHOOK_SECRET, b"{}", header, now=1_700_000_000)


# --- a real process ------------------------------------------------------------------------


@pytest.fixture
async def provider_process(tmp_path: Path) -> AsyncIterator[str]:
    """`ticketflow payment-provider` as its own process (group); yields its base URL."""
    async with running_provider(tmp_path / "ledger.db", tmp_path) as provider:
        yield provider.base_url


async def test_cli_serves_the_provider_over_http(provider_process: str) -> None:
    async with httpx.AsyncClient(base_url=provider_process, timeout=5.0) as client:
        answer = await charge(client, "key-1")
        assert answer.status_code == 201
        assert await ledger(client) == [answer.json()]


async def test_timed_out_charge_is_recorded_and_a_retry_returns_it(provider_process: str) -> None:
    async with httpx.AsyncClient(base_url=provider_process, timeout=5.0) as client:
        await set_faults(client, timeout_rate=1, hang_seconds=2)
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/v1/charges", json=charge_body(), headers=key_header("key-1"), timeout=0.5
            )
        [recorded] = await ledger(client, idempotency_key="key-1")
        await client.post("/_sandbox/reset")
        retry = await charge(client, "key-1")
        assert (retry.status_code, retry.json()) == (201, recorded)
        assert retry.headers["idempotent-replayed"] == "true"
