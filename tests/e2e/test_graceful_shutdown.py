"""SIGTERM to `ticketflow serve`: new connections are refused at once, the request in flight still
gets its normal answer, the outbox position is flushed, and the process exits 0 within its grace."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
from redis.asyncio import Redis

from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus

from ..builders import event_on_sale, hold
from ..conftest import scalar
from ..invariants import assert_invariants
from ..polling import eventually
from .conftest import buyers
from .servers import ServerProcess, start_server
from .test_payments_e2e import app_env, count, pay, set_faults

GRACE_SECONDS = 10
PROVIDER_LATENCY_MS = 2500  # the payment in flight when SIGTERM arrives: well inside the grace


async def connection_refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def relayed_through(bus: MessageBus, stream: str) -> object:
    return await scalar(
        bus.engine,
        "SELECT last_seq FROM outbox_positions WHERE name = :name",
        name=f"redis:{stream}",
    )


async def newest_seq(bus: MessageBus) -> object:
    return await scalar(bus.engine, "SELECT max(seq) FROM domain_events")


async def test_sigterm_finishes_the_request_in_flight_and_exits_within_the_grace_period(
    e2e_bus: MessageBus,
    e2e_settings: Settings,
    payment_provider: ServerProcess,
    provider_client: httpx.AsyncClient,
    redis_url: str,
    tmp_path: Path,
) -> None:
    sale = await event_on_sale(e2e_bus, totals=(10,))
    [buyer] = await buyers(e2e_bus, 1)
    stream = f"test-shutdown:{uuid.uuid4().hex}"
    env = app_env(
        e2e_settings,
        payment_provider,
        redis_url=redis_url,
        events_stream=stream,
        run_relay="true",
        # One round at start, then none until shutdown: only the last round can publish later.
        relay_interval_seconds=3600,
        run_consumers="false",
        shutdown_grace_seconds=GRACE_SECONDS,
    )
    server = await start_server(env, tmp_path)
    try:
        await server.wait_ready()
        seeded = await newest_seq(e2e_bus)

        async def first_round_done() -> bool:
            return await relayed_through(e2e_bus, stream) == seeded

        await eventually(first_round_done, within=10.0, what="the relay's first round")

        booking_id = (await hold(e2e_bus, buyer, sale.event.id, sale.line(2))).id
        await set_faults(provider_client, latency_ms=PROVIDER_LATENCY_MS)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            payment = asyncio.create_task(pay(client, buyer, booking_id, key="pay-at-shutdown"))

            async def payment_started() -> bool:
                if payment.done():  # answered already: the check below says how
                    return True
                return await count(e2e_bus, "payments WHERE booking_id = :id", id=booking_id) == 1

            await eventually(payment_started, within=10.0, what="the payment to be in flight")
            assert not payment.done(), f"answered before SIGTERM: {payment.result().text}"
            server.process.send_signal(signal.SIGTERM)
            await eventually(
                lambda: connection_refused(server.port), within=2.0, what="new connections refused"
            )
            assert not payment.done(), "the payment was not in flight during the shutdown"
            answer = await payment

        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "succeeded"
        returncode = await asyncio.wait_for(server.process.wait(), GRACE_SECONDS)
        assert returncode == 0, server.log_tail()
    finally:
        await server.kill()

    assert await scalar(e2e_bus.engine, "SELECT status FROM bookings") == "confirmed"
    newest = await newest_seq(e2e_bus)
    assert isinstance(newest, int) and isinstance(seeded, int) and newest > seeded
    assert await relayed_through(e2e_bus, stream) == newest  # flushed by the last round
    redis = Redis.from_url(redis_url)
    try:
        assert await redis.xlen(stream) == await count(e2e_bus, "domain_events")
    finally:
        await redis.aclose()
    await assert_invariants(e2e_bus.engine)
