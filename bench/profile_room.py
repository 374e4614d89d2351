"""`python -m bench.profile_room [--requests N] [--concurrency C] [--pre-queue] [--joins]
[--profile]`: the app's own cost of one look at a waiting place (`GET /api/v1/events/{id}/queue/
{ticket_id}`, the room's heartbeat), or with --joins of one join (`POST .../queue`, N buyers of
their own), in process, as bench/profile_app.py measures the booking paths.

C buyers join a room whose sale is open (or, with --pre-queue, opens tomorrow) and which admits
one buyer a minute, so every place keeps waiting; then each looks at its place N/C times, C
looks in flight. Printed: looks per second of app CPU (and the microseconds of one)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvloop

from bench import seed
from bench.config import BenchConfig
from bench.profile_app import _call, _scope, measure_lanes
from bench.runner import app_settings
from bench.stack import throwaway_database, throwaway_redis
from ticketflow.api.app import create_app, served
from ticketflow.config import Settings
from ticketflow.domain.model import Role

SLOW_ROOM = {"enabled": True, "admit_per_minute": 1, "session_minutes": 10}


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with (
            throwaway_redis(Path(directory)) as redis,
            throwaway_database(BenchConfig().postgres_url) as database_url,
        ):
            values = app_settings(database_url, redis.url)
            values.update(run_sweeper=False, run_relay=False, run_consumers=False)
            values.update(shed_requests_in_progress=0)  # every look is worked on: its CPU is what
            app = served(create_app(Settings(**values)))  # type: ignore[arg-type]
            async with app.router.lifespan_context(app):
                bus = app.state.bus
                organizer = (await seed.accounts(bus, 1, Role.MANAGER))[0]
                opening = bus.deps.clock.now() + timedelta(days=1 if args.pre_queue else 0)
                sale = await seed.sale(
                    bus, organizer, 10, title="room", sales_start=opening, waiting_room=SLOW_ROOM
                )
                queue = f"/api/v1/events/{sale.event_id}/queue"
                if args.joins:
                    await _measure_joins(app, queue, args)
                    return
                buyers = await seed.accounts(bus, args.concurrency)
                tokens = seed.access_tokens(bus, buyers)
                looks: list[tuple[dict[str, object], bytes]] = []
                for token in tokens:
                    headers = [(b"authorization", f"Bearer {token}".encode())]
                    joined: list[bytes] = []
                    status = await _call(app, _scope("POST", queue, headers), b"", joined)
                    assert status == 200, joined
                    place = json.loads(b"".join(joined))
                    looks.append((_scope("GET", f"{queue}/{place['ticket_id']}", headers), b""))

                async def lane(index: int, count: int, statuses: list[int]) -> None:
                    scope, body = looks[index]
                    for _ in range(count):
                        statuses.append(await _call(app, dict(scope), body))

                await asyncio.gather(*(lane(i, 5, []) for i in range(args.concurrency)))
                label = f"look{' (pre-queue)' if args.pre_queue else ''}"
                per_lane = args.requests // args.concurrency
                await measure_lanes(label, lane, args.concurrency, per_lane, args)


async def _measure_joins(app: Any, queue: str, args: argparse.Namespace) -> None:
    """`--joins`: every request a join by a buyer of its own (what a crowd sends first)."""
    bus = app.state.bus
    tokens = seed.access_tokens(bus, await seed.accounts(bus, args.requests))
    joins = [_scope("POST", queue, [(b"authorization", f"Bearer {t}".encode())]) for t in tokens]
    per_lane = args.requests // args.concurrency

    async def lane(index: int, count: int, statuses: list[int]) -> None:
        for n in range(index * per_lane, index * per_lane + count):
            statuses.append(await _call(app, dict(joins[n]), b""))

    label = f"join{' (pre-queue)' if args.pre_queue else ''}"
    await measure_lanes(label, lane, args.concurrency, per_lane, args)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_room")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--pre-queue", action="store_true", help="look before the opening")
    parser.add_argument("--joins", action="store_true", help="measure joins, not looks")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--lines", type=int, default=60)
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
