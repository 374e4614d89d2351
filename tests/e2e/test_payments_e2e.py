"""Payments end to end: app servers and the sandbox provider as real processes on PostgreSQL.

Concurrent retries, a flaky provider and an app killed between charge and confirmation must never
charge a booking twice, nor leave it paid and unconfirmed (invariant 3, against the provider's
own ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.sweeper import reconcile_once

from ..builders import API, Account, event_on_sale, hold, problem
from ..conftest import FAST_PASSWORDS, scalar
from ..invariants import assert_invariants, assert_payments_match_ledger
from ..polling import eventually
from .conftest import buyers
from .servers import ServerProcess, running_servers, server_env

CARD = "pm_card_visa"
DECLINED_CARD = "pm_card_declined"

Json = dict[str, Any]


def app_env(settings: Settings, provider: ServerProcess, **overrides: object) -> dict[str, str]:
    """A server's environment: our database and token secret, paying through `provider`."""
    return server_env(
        settings.database_url,
        settings.jwt_secret,
        payment_provider_url=provider.base_url,
        **overrides,
    )


@contextlib.asynccontextmanager
async def clients_of(
    servers: Sequence[ServerProcess], connections: int = 100
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client (connection pool) per server, so no client's pool is the bottleneck."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30.0)
            )
            for server in servers
        ]


async def pay(
    client: httpx.AsyncClient, buyer: Account, booking_id: UUID, key: str, method: str = CARD
) -> httpx.Response:
    return await client.post(
        f"{API}/bookings/{booking_id}/payments",
        headers={**buyer.headers, "Idempotency-Key": key},
        json={"payment_method": method},
    )


async def set_faults(provider: httpx.AsyncClient, **faults: object) -> None:
    answer = await provider.put("/_sandbox/faults", json=faults)
    assert answer.status_code == 200, answer.text


async def charges(provider: httpx.AsyncClient) -> list[Json]:
    answer = await provider.get("/v1/charges")
    assert answer.status_code == 200, answer.text
    items: list[Json] = answer.json()["items"]
    return items


async def booking_status(bus: MessageBus, booking_id: UUID) -> object:
    return await scalar(bus.engine, "SELECT status FROM bookings WHERE id = :id", id=booking_id)


async def count(bus: MessageBus, sql: str, **params: object) -> object:
    return await scalar(bus.engine, f"SELECT count(*) FROM {sql}", **params)


async def assert_all_invariants(bus: MessageBus, provider: httpx.AsyncClient) -> None:
    await assert_invariants(bus.engine)
    await assert_payments_match_ledger(bus.engine, provider)


# --- one payment, retried concurrently -----------------------------------------------------

CONCURRENT_RETRIES = 50


async def test_concurrent_retries_of_one_payment_charge_once(
    e2e_bus: MessageBus,
    e2e_settings: Settings,
    payment_provider: ServerProcess,
    provider_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    sale = await event_on_sale(e2e_bus, totals=(10,))
    [buyer] = await buyers(e2e_bus, 1)
    booking_id = (await hold(e2e_bus, buyer, sale.event.id, (sale.ticket_types[0].id, 2))).id
    await set_faults(provider_client, latency_ms=300)  # the first charge is slow: retries overlap

    env = app_env(e2e_settings, payment_provider)
    async with running_servers(2, env, tmp_path) as servers, clients_of(servers) as clients:
        answers = await asyncio.gather(
            *(
                pay(clients[n % len(clients)], buyer, booking_id, key="pay-once")
                for n in range(CONCURRENT_RETRIES)
            )
        )
        late = await asyncio.gather(*(pay(c, buyer, booking_id, key="pay-once") for c in clients))

    assert set(Counter(a.status_code for a in answers)) <= {201, 409}, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert problem(refused, 409)["type"].endswith(":request-in-flight")
    created = [a for a in answers if a.status_code == 201]
    assert created, "no retry got the payment"
    assert sum("idempotent-replayed" not in a.headers for a in created) == 1
    for replay in [*created, *late]:
        assert (replay.status_code, replay.content) == (201, created[0].content)
    assert all(a.headers["idempotent-replayed"] == "true" for a in late)

    payment = created[0].json()
    assert payment["status"] == "succeeded"
    [charge] = await charges(provider_client)
    assert (charge["idempotency_key"], charge["amount_minor"]) == (payment["id"], 2 * 1000)
    assert await count(e2e_bus, "payments") == 1
    assert await count(e2e_bus, "payments WHERE status = 'succeeded'") == 1
    assert await booking_status(e2e_bus, booking_id) == "confirmed"
    assert await count(e2e_bus, "tickets WHERE booking_id = :id", id=booking_id) == 2
    await assert_all_invariants(e2e_bus, provider_client)


# --- many payments through a flaky provider ------------------------------------------------

BOOKINGS = 200
# Buyers send 1 to PATIENCE attempts (their own retries, on top of the app's retries of the
# provider): the impatient ones leave payments pending for the reconciler.
PATIENCE = 4
DECLINED_EVERY = 10  # every tenth buyer pays with a card the provider declines
FLAKY_TIMEOUT_SECONDS = 0.5
FLAKY_HANG_SECONDS = 1.5  # longer than the app waits: the charge is recorded, the answer lost


async def pay_with_retries(
    client: httpx.AsyncClient, buyer: Account, booking_id: UUID, method: str, attempts: int
) -> tuple[httpx.Response, int]:
    """A buyer: one Idempotency-Key, resent on 503 and 409; the last answer, and the tries."""
    for attempt in range(1, attempts + 1):
        answer = await pay(client, buyer, booking_id, key=f"pay-{booking_id}", method=method)
        if answer.status_code not in (409, 503) or attempt == attempts:
            break
        await asyncio.sleep(min(0.05 * 2**attempt, 0.4))  # the buyer's backoff
    return answer, attempt


async def reconcile_until_nothing_pending(settings: Settings, bus: MessageBus) -> None:
    """Run the reconciler with a clock past the reconcile delay, round after round."""
    later = datetime.now(UTC) + timedelta(seconds=settings.reconcile_after_seconds + 1)
    reconciler = build_bus(settings, ManualClock(later), FAST_PASSWORDS)

    async def nothing_pending() -> bool:
        await reconcile_once(reconciler)
        return await count(bus, "payments WHERE status = 'pending'") == 0

    try:
        await eventually(nothing_pending, within=20.0, what="every pending payment to settle")
    finally:
        await reconciler.deps.payments.aclose()
        await reconciler.engine.dispose()


async def test_flaky_provider_never_double_charges(
    e2e_bus: MessageBus,
    e2e_settings: Settings,
    payment_provider: ServerProcess,
    provider_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    sale = await event_on_sale(e2e_bus, totals=(2 * BOOKINGS,))
    accounts = await buyers(e2e_bus, BOOKINGS)
    tier = sale.ticket_types[0].id
    bookings = await asyncio.gather(
        *(
            hold(e2e_bus, buyer, sale.event.id, (tier, 1 + n % 2))
            for n, buyer in enumerate(accounts)
        )
    )
    booking_ids = [booking.id for booking in bookings]
    methods = [DECLINED_CARD if n % DECLINED_EVERY == 0 else CARD for n in range(BOOKINGS)]
    await set_faults(
        provider_client,
        failure_rate=0.5,
        timeout_rate=0.2,
        hang_seconds=FLAKY_HANG_SECONDS,
        seed=20260601,
    )

    env = app_env(
        e2e_settings,
        payment_provider,
        payment_timeout_seconds=FLAKY_TIMEOUT_SECONDS,
        payment_retry_attempts=3,
        payment_breaker_recovery_seconds=1,
    )
    async with running_servers(2, env, tmp_path) as servers, clients_of(servers) as clients:
        outcomes = await asyncio.gather(
            *(
                pay_with_retries(
                    clients[n % len(clients)], buyer, booking_id, method, 1 + n % PATIENCE
                )
                for n, (buyer, booking_id, method) in enumerate(
                    zip(accounts, booking_ids, methods, strict=True)
                )
            )
        )
        assert all(server.process.returncode is None for server in servers), "a server died"

    abandoned = await count(e2e_bus, "payments WHERE status = 'pending'")
    assert (await provider_client.post("/_sandbox/reset")).status_code == 200
    settings = e2e_settings.model_copy(update={"payment_provider_url": payment_provider.base_url})
    await reconcile_until_nothing_pending(settings, e2e_bus)

    assert sum(tries for _, tries in outcomes) > BOOKINGS, "the provider was never flaky"
    assert abandoned, "no buyer gave up: the reconciler had nothing to settle"
    statuses = Counter[int]()
    for (answer, _), booking_id, method in zip(outcomes, booking_ids, methods, strict=True):
        statuses[answer.status_code] += 1
        status = await booking_status(e2e_bus, booking_id)
        if method == DECLINED_CARD:
            # 409: the buyer's last retry came while the first attempt was still retrying the
            # flaky provider; whatever the buyer saw, a declined card never confirms.
            assert answer.status_code in (402, 409, 503), answer.text
            assert status == "pending"
        elif answer.status_code == 201:
            assert answer.json()["status"] == "succeeded"
            assert status == "confirmed"
        else:  # the buyer gave up; the reconciler settled it either way
            assert answer.status_code in (409, 503), answer.text
            assert status in ("pending", "confirmed")
    assert statuses[201] > 0, statuses
    assert await count(e2e_bus, "payments WHERE status = 'succeeded'") == await count(
        e2e_bus, "bookings WHERE status = 'confirmed'"
    )
    await assert_all_invariants(e2e_bus, provider_client)


# --- the app dies after the charge, before the confirmation --------------------------------

HANG_SECONDS = 30.0  # the provider records the charge, then holds its answer this long


async def test_app_killed_between_charge_and_confirmation_recovers(
    e2e_bus: MessageBus,
    e2e_settings: Settings,
    payment_provider: ServerProcess,
    provider_client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    sale = await event_on_sale(e2e_bus, totals=(10,))
    [buyer] = await buyers(e2e_bus, 1)
    booking_id = (await hold(e2e_bus, buyer, sale.event.id, (sale.ticket_types[0].id, 3))).id
    await set_faults(provider_client, timeout_rate=1, hang_seconds=HANG_SECONDS)

    async def charged() -> bool:
        return len(await charges(provider_client)) == 1

    # The app would wait longer than the provider hangs: it is killed while it waits.
    env = app_env(
        e2e_settings,
        payment_provider,
        payment_timeout_seconds=2 * HANG_SECONDS,
        payment_retry_attempts=1,
    )
    async with (
        running_servers(1, env, tmp_path) as [doomed],
        clients_of([doomed]) as [client],
    ):
        paying = asyncio.create_task(pay(client, buyer, booking_id, key="pay-then-crash"))
        await eventually(charged, within=10.0, what="the provider to record the charge")
        await doomed.kill()
        with pytest.raises(httpx.TransportError):
            await paying

    assert await booking_status(e2e_bus, booking_id) == "pending"
    assert await count(e2e_bus, "payments") == 1
    assert await count(e2e_bus, "payments WHERE status = 'pending'") == 1
    assert await count(e2e_bus, "tickets") == 0

    assert (await provider_client.post("/_sandbox/reset")).status_code == 200

    async def confirmed() -> bool:
        return await booking_status(e2e_bus, booking_id) == "confirmed"

    recovering = app_env(
        e2e_settings,
        payment_provider,
        run_reconciler="true",
        reconcile_after_seconds=1,
        reconcile_interval_seconds=0.2,
    )
    async with running_servers(1, recovering, tmp_path):
        await eventually(confirmed, within=15.0, what="the reconciler to confirm the booking")

    [charge] = await charges(provider_client)
    assert charge["amount_minor"] == 3 * 1000
    assert await count(e2e_bus, "payments WHERE status = 'succeeded'") == 1
    payment_id = await scalar(e2e_bus.engine, "SELECT id FROM payments")
    assert charge["idempotency_key"] == str(payment_id)
    assert await count(e2e_bus, "tickets WHERE booking_id = :id", id=booking_id) == 3
    await assert_all_invariants(e2e_bus, provider_client)
