"""`python -m bench.profile_app [--path soldout|health|hold|burst|event|list] [--requests N]
[--concurrency C] [--profile]`: the app's own cost per request, in process, without an HTTP
server or a load generator in the way — where the CPU of one request goes (cProfile), for tuning
the hot path. `burst` is the benchmark's burst in miniature: N buyers, each with a token never
seen before, all asking at once for N/2 tickets. `event` and `list` are the browse phase's two
reads (GET /events/{id}, GET /events), anonymous, as the public catalog is read.

It starts the same throwaway stack as the benchmark (a `bench_*` PostgreSQL database and a
redis-server of its own), calls the ASGI app directly with C requests in flight, and prints
requests per second of app CPU. The numbers are not the benchmark's: they leave out granian,
sockets and the client, which is the point.
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
from typing import Any

import uvloop

from bench import seed
from bench.callgrind_marks import CallgrindMarks
from bench.config import BenchConfig
from bench.runner import app_settings
from bench.stack import throwaway_database, throwaway_redis
from ticketflow.api.app import create_app, served
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role

# The public catalog reads of the browse phase, by --path.
READS = {"event": "/api/v1/events/{}", "list": "/api/v1/events"}


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(
    app: Any, scope: dict[str, Any], body: bytes, answer: list[bytes] | None = None
) -> int:
    """The answer's status; its body's parts appended to `answer` if given."""
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif answer is not None and message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await app(scope, receive, send)
    return status


def _booking_body(sale: seed.Sale) -> bytes:
    lines = [{"ticket_type_id": sale.ticket_type_id, "quantity": 1}]
    return json.dumps({"event_id": sale.event_id, "lines": lines}).encode()


async def _main(args: argparse.Namespace) -> None:
    config = BenchConfig()
    with tempfile.TemporaryDirectory() as directory:
        async with (
            throwaway_redis(Path(directory)) as redis,
            throwaway_database(config.postgres_url) as database_url,
        ):
            values = app_settings(database_url, redis.url)
            values.update(run_sweeper=False, run_relay=False, run_consumers=False)
            app = served(create_app(Settings(**values)))  # type: ignore[arg-type]
            async with app.router.lifespan_context(app):
                bus = app.state.bus
                organizer = (await seed.accounts(bus, 1, Role.MANAGER))[0]
                burst = args.path == "burst"
                if burst:  # one request per buyer; the warm-up uses tokens of its own
                    args.concurrency = args.requests
                buyers = await seed.accounts(bus, args.concurrency)
                tokens = seed.access_tokens(bus, buyers)
                warm_up = 5  # requests per lane before measuring
                size = (
                    1
                    if args.path in ("soldout", *READS)
                    else args.requests + warm_up * args.concurrency
                )
                if burst:
                    size = args.requests // 2
                    warm_up_tokens = seed.access_tokens(bus, buyers)
                sale = await seed.sale(
                    bus, organizer, size, title="profile", max_tickets_per_buyer=args.buyer_cap
                )
                if args.path == "soldout":
                    await bus.handle(
                        cmd.HoldTickets(
                            actor=buyers[0],
                            event_id=uuid.UUID(sale.event_id),
                            lines=((uuid.UUID(sale.ticket_type_id), 1),),
                        )
                    )
                body = _booking_body(sale)

                def request(index: int) -> tuple[dict[str, Any], bytes]:
                    if args.path == "health":
                        return _scope("GET", "/health", []), b""
                    if args.path in READS:
                        return _scope("GET", READS[args.path].format(sale.event_id), []), b""
                    headers = [
                        (b"authorization", f"Bearer {tokens[index % len(tokens)]}".encode()),
                        (b"content-type", b"application/json"),
                        (b"idempotency-key", uuid.uuid4().hex.encode()),
                    ]
                    return _scope("POST", "/api/v1/bookings", headers), body

                async def lane(lane_index: int, count: int, statuses: list[int]) -> None:
                    for number in range(count):
                        scope, payload = request(lane_index + number * args.concurrency)
                        statuses.append(await _call(app, scope, payload))

                per_lane = args.requests // args.concurrency
                if burst:  # warmed up on a sale of its own, with other tokens of the same buyers
                    measured_tokens, tokens = tokens, warm_up_tokens
                    warm_up_sale, sale = sale, await seed.sale(bus, organizer, 100, title="warm")
                    body = _booking_body(sale)
                    await asyncio.gather(*(lane(i, 1, []) for i in range(200)))
                    tokens, sale, body = measured_tokens, warm_up_sale, _booking_body(warm_up_sale)
                else:
                    await asyncio.gather(*(lane(i, warm_up, []) for i in range(args.concurrency)))
                marks = CallgrindMarks() if args.callgrind_marks else None
                await measure_lanes(args.path, lane, args.concurrency, per_lane, args, marks)


Lane = Callable[[int, int, list[int]], Awaitable[None]]


async def measure_lanes(
    label: str,
    lane: Lane,
    concurrency: int,
    per_lane: int,
    args: argparse.Namespace,
    marks: CallgrindMarks | None = None,
) -> None:
    """Run `concurrency` lanes of `per_lane` requests each (`lane(index, count, statuses)`) and
    print the requests per CPU-second of this process; `args.profile` adds cProfile (sorted by
    `args.sort`, `args.lines` lines), `marks` callgrind's around the measured requests."""
    statuses: list[int] = []
    profiler = cProfile.Profile() if args.profile else None
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    if marks:
        marks.zero()
    await asyncio.gather(*(lane(i, per_lane, statuses) for i in range(concurrency)))
    if marks:
        marks.dump()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    counts = {status: statuses.count(status) for status in set(statuses)}
    print(
        f"{label}: {len(statuses)} requests {counts}, "
        f"{len(statuses) / cpu:,.0f} per CPU-second of this process "
        f"({1e6 * cpu / len(statuses):,.0f} us each), "
        f"wall {len(statuses) / wall:,.0f}/s"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_app")
    paths = ("soldout", "health", "hold", "burst", *READS)
    parser.add_argument("--path", choices=paths, default="soldout")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    # Under `valgrind --tool=callgrind`: the measured requests' instructions in a dump of
    # their own (callgrind.out.<pid>.1), see bench/callgrind_marks.py.
    parser.add_argument("--callgrind-marks", action="store_true")
    parser.add_argument(
        "--buyer-cap",
        type=lambda given: None if given == "none" else int(given),
        default=10,
        help="tickets per buyer of the profiled sale, or 'none' (the burst's default is 10)",
    )
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--lines", type=int, default=60)
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
