"""`python -m bench.profile_payments [--requests N] [--concurrency C] [--profile ROUTE]`: the
app's CPU per request of a paying buyer's steps (hold, pay, the provider's callback, tickets),
in process, as `bench.profile_app` does for the hot path: no HTTP server or load generator in
the way. The charge goes over real HTTP to the sandbox provider (its own process, not counted);
the callback is the provider's signed `charge.succeeded`, sent once the pay request settled it,
as the provider's own usually lands. `--profile ROUTE` adds cProfile (CPU time) to one step;
`--statements` prints the SQL one request of each step sends.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import seed
from bench.callgrind_marks import CallgrindMarks
from bench.config import BenchConfig
from bench.profile_app import _scope
from bench.runner import app_settings
from bench.stack import throwaway_database, throwaway_redis
from tests.e2e.servers import running_provider
from ticketflow.api.app import create_app, served
from ticketflow.config import Settings
from ticketflow.domain.model import Role
from ticketflow.payment_provider.signing import sign

Call = Callable[[int], Awaitable[tuple[int, bytes]]]


async def _asgi(
    app: object, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    scope = _scope(method, path, [(k.encode(), v.encode()) for k, v in headers.items()])
    answer: dict[str, object] = {"status": 0, "body": b""}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] = bytes(answer["body"]) + bytes(message.get("body", b""))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[operator]
    return int(answer["status"]), bytes(answer["body"])  # type: ignore[call-overload]


async def _measure(
    label: str, indexes: range, lanes: int, call: Call, profile: str | None, quiet: bool = False
) -> None:
    statuses: list[int] = []
    count = len(indexes)

    async def lane(first: int) -> None:
        for index in indexes[first::lanes]:
            statuses.append((await call(index))[0])

    profiler = cProfile.Profile(time.process_time) if profile == label else None
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    await asyncio.gather(*(lane(first) for first in range(lanes)))
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    if quiet:
        return
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print(
        f"{label:8} {count} requests {counts}: {1e3 * cpu / count:.2f} ms of app CPU each, "
        f"wall {count / wall:,.0f}/s"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


async def _print_statements(label: str, engine: AsyncEngine, call: Call, index: int) -> None:
    """The SQL one request of a step sends (its own and any background task's meanwhile)."""
    sent: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(" ".join(statement.split())[:150])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await call(index)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    print(f"{label}: {len(sent)} statements")
    for statement in sent:
        print(f"    {statement}")


async def _main(args: argparse.Namespace) -> None:
    config, count, lanes = BenchConfig(), args.requests, args.concurrency
    with tempfile.TemporaryDirectory() as directory:
        async with (
            throwaway_redis(Path(directory)) as redis,
            throwaway_database(config.postgres_url) as database_url,
            running_provider(Path(directory) / "ledger.db", Path(directory)) as provider,
        ):
            values = app_settings(database_url, redis.url)
            background = args.background  # the relay and consumers, as in `ticketflow serve`
            values.update(run_sweeper=False, run_relay=background, run_consumers=background)
            values.update(payment_provider_url=provider.base_url)
            settings = Settings(**values)  # type: ignore[arg-type]
            app = served(create_app(settings))
            async with app.router.lifespan_context(app):
                bus = app.state.bus
                (organizer,) = await seed.accounts(bus, 1, Role.MANAGER)
                tokens = seed.access_tokens(bus, await seed.accounts(bus, lanes))
                sale = await seed.sale(  # each buyer comes back many times: no per-buyer cap
                    bus,
                    organizer,
                    2 * count + 10 * lanes,
                    title="profile payments",
                    max_tickets_per_buyer=None,
                )
                line = {"ticket_type_id": sale.ticket_type_id, "quantity": 1}
                hold_body = json.dumps({"event_id": sale.event_id, "lines": [line]}).encode()
                booking_ids: dict[int, str] = {}
                charges: dict[int, dict[str, object]] = {}

                def headers(index: int, key: bool = True) -> dict[str, str]:
                    given = {
                        "authorization": f"Bearer {tokens[index % lanes]}",
                        "content-type": "application/json",
                    }
                    return {**given, "idempotency-key": uuid.uuid4().hex} if key else given

                async def hold(index: int) -> tuple[int, bytes]:
                    status, body = await _asgi(
                        app, "POST", "/api/v1/bookings", headers(index), hold_body
                    )
                    booking_ids[index] = json.loads(body)["id"]
                    return status, body

                async def pay(index: int) -> tuple[int, bytes]:
                    path = f"/api/v1/bookings/{booking_ids[index]}/payments"
                    status, body = await _asgi(
                        app, "POST", path, headers(index), b'{"payment_method":"pm_card_visa"}'
                    )
                    charges[index] = json.loads(body)
                    return status, body

                async def callback(index: int) -> tuple[int, bytes]:
                    payment = charges[index]
                    charge = {
                        "id": payment["provider_ref"],
                        "idempotency_key": payment["id"],
                        "amount_minor": payment["amount_minor"],
                        "currency": payment["currency"],
                        "status": "succeeded",
                        "decline_reason": None,
                    }
                    now = int(time.time())
                    body = json.dumps(
                        {
                            "id": f"evt_{uuid.uuid4().hex}",
                            "type": "charge.succeeded",
                            "created": now,
                            "data": charge,
                        }
                    ).encode()
                    signed = {
                        "provider-signature": sign(settings.payment_webhook_secret, body, now),
                        "content-type": "application/json",
                    }
                    return await _asgi(app, "POST", "/api/v1/payments/webhook", signed, body)

                async def tickets(index: int) -> tuple[int, bytes]:
                    path = f"/api/v1/bookings/{booking_ids[index]}/tickets"
                    return await _asgi(app, "GET", path, headers(index, key=False), b"")

                steps = (("hold", hold), ("pay", pay), ("callback", callback), ("tickets", tickets))
                warm_up = range(count, count + 5 * lanes)
                for label, call in steps:
                    await _measure(label, warm_up, lanes, call, None, quiet=True)
                if args.statements:
                    for label, call in steps:
                        await _print_statements(label, app.state.bus.engine, call, count)
                # Under `valgrind --tool=callgrind`: each step's instructions in a dump of its
                # own (callgrind.out.<pid>.1 to .4, in the steps' order; bench/callgrind_marks.py).
                marks = CallgrindMarks() if args.callgrind_marks else None
                for label, call in steps:
                    if marks:
                        marks.zero()
                    await _measure(label, range(count), lanes, call, args.profile)
                    if marks:
                        marks.dump()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_payments")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--profile", choices=("hold", "pay", "callback", "tickets"))
    parser.add_argument(
        "--background",
        action="store_true",
        help="run the outbox relay and the consumers too (their CPU lands on the steps)",
    )
    parser.add_argument("--callgrind-marks", action="store_true")
    parser.add_argument(
        "--statements", action="store_true", help="print the SQL of one request of each step"
    )
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
