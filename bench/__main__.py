"""`python -m bench [--phases burst,soldout] [--buyers N] ...`: see bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import uvloop
from rich.console import Console

from bench.config import BROWSE_VIA, DEFAULT_PHASES, PHASES, SERVERS, BenchConfig, doubling
from bench.runner import run


def parse(argv: list[str]) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="The TicketFlow flash-sale benchmark."
    )
    add = parser.add_argument
    add(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help=f"comma-separated, of: {', '.join(PHASES)} (default: all but marathon and room)",
    )
    add("--buyers", type=int, default=defaults.buyers, help="U: buyers (burst connections)")
    add("--tickets", type=int, default=defaults.tickets, help="T: tickets in the burst")
    add("--workers", type=int, default=defaults.workers, help="app worker processes")
    add("--clients", type=int, default=defaults.clients, help="load-generator processes")
    add("--connections", type=int, default=defaults.connections, help="closed-loop connections")
    add("--duration", type=float, default=defaults.duration, help="closed-loop seconds")
    add(
        "--rates",
        default=None,
        help="sustained rates, e.g. 500,1000,2000 (default: doubling from 500 up to 32000)",
    )
    add("--max-rate", type=int, default=32_000, help="sustained: highest doubled rate")
    add(
        "--rate-refinements",
        type=int,
        default=None,
        help="sustained: bisections between the last passing and the first failing rate "
        f"(default {defaults.rate_refinements}; 0 with --rates: those rates only)",
    )
    add("--step-duration", type=float, default=defaults.step_duration, help="sustained seconds")
    add("--open-connections", type=int, default=defaults.open_connections)
    add("--p99-budget-ms", type=float, default=defaults.p99_budget_ms)
    add("--journey-users", type=int, default=defaults.journey_users, help="journey: users")
    add("--room-joins", type=int, default=defaults.room_joins, help="room: buyers who join")
    add("--room-prequeue", type=int, default=defaults.room_prequeue, help="room: of them early")
    add("--room-tickets", type=int, default=defaults.room_tickets, help="room: tickets on sale")
    add("--room-poll", type=float, default=defaults.room_poll, help="room: s between looks")
    add(
        "--room-join-rate",
        type=float,
        default=defaults.room_join_rate,
        help="room: joins a second (each group arrives at this pace)",
    )
    add("--journey-ramp", type=float, default=defaults.journey_ramp, help="journey: ramp-up, s")
    add("--journey-duration", type=float, default=defaults.journey_duration, help="journey: s")
    add(
        "--journey-think",
        default=",".join(f"{bound:g}" for bound in defaults.journey_think),
        metavar="MIN,MAX",
        help="journey: seconds between a user's requests, uniform in [MIN, MAX]",
    )
    add(
        "--journey-pay-share",
        type=float,
        default=defaults.journey_pay_share,
        help="journey: share of the holds paid for",
    )
    add(
        "--marathon-tickets",
        type=int,
        default=defaults.marathon_tickets,
        help="marathon: tickets of its one ticket type, sold one per booking",
    )
    add(
        "--marathon-rate",
        type=int,
        default=defaults.marathon_rate,
        help="marathon: bookings/s, open loop (default: sustained's best rate if that phase "
        "ran before it in this run, else 2000)",
    )
    add(
        "--marathon-window",
        type=float,
        default=defaults.marathon_window,
        help="marathon: seconds of each window of the per-window latency",
    )
    add("--marathon-p99-budget-ms", type=float, default=defaults.marathon_p99_budget_ms)
    add("--timeout", type=float, default=defaults.timeout, help="request timeout, seconds")
    add("--no-idempotency-keys", action="store_true", help="send bookings without keys")
    add(
        "--buyer-cap",
        default=str(defaults.buyer_cap),
        metavar="N|none",
        help="burst, baseline-lock, soldout, browse: the sale's max_tickets_per_buyer (default "
        "10, a new event's; 'none' to measure without the cap's lock and count)",
    )
    add("--engine", default=defaults.engine, help="booking engine measured (batched, direct)")
    add(
        "--server",
        choices=SERVERS,
        default=defaults.server,
        help="granian (`ticketflow serve`, the product's) or uvicorn, to compare the two",
    )
    add(
        "--browse-via",
        choices=BROWSE_VIA,
        default=defaults.browse_via,
        help="browse: straight to the app, or through nginx in front of it (deploy/cluster.py's)",
    )
    add("--postgres-url", default=defaults.postgres_url, help="server for bench_* databases")
    add("--results-dir", type=Path, default=defaults.results_dir)
    add(
        "--app-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra app setting (Settings field name), e.g. hold_batch_window_ms=2",
    )
    args = parser.parse_args(argv)
    phases = tuple(phase.strip() for phase in args.phases.split(",") if phase.strip())
    unknown = [phase for phase in phases if phase not in PHASES]
    if unknown:
        parser.error(f"unknown phases {unknown}; choose from {', '.join(PHASES)}")
    think = _think(parser, args.journey_think)
    if args.journey_users < 1 or args.journey_duration <= 0 or args.journey_ramp < 0:
        parser.error("--journey-users must be >= 1, --journey-duration > 0, --journey-ramp >= 0")
    if not 0 <= args.journey_pay_share <= 1:
        parser.error("--journey-pay-share is a share: between 0 and 1")
    if args.marathon_tickets < 1 or args.marathon_window <= 0:
        parser.error("--marathon-tickets must be >= 1, --marathon-window > 0")
    if args.marathon_rate is not None and args.marathon_rate < 1:
        parser.error("--marathon-rate must be >= 1")
    if args.room_joins < 1 or not 0 <= args.room_prequeue <= args.room_joins:
        parser.error("--room-joins must be >= 1, --room-prequeue between 0 and --room-joins")
    if args.room_join_rate <= 0:
        parser.error("--room-join-rate must be > 0")
    if args.room_tickets < 1 or not 0 < args.room_poll < 60:
        parser.error("--room-tickets must be >= 1; --room-poll under 60 s (or places go stale)")
    rates = (
        tuple(int(rate) for rate in args.rates.split(","))
        if args.rates
        else doubling(500, args.max_rate)
    )
    try:
        buyer_cap = None if args.buyer_cap == "none" else int(args.buyer_cap)
    except ValueError:
        parser.error("--buyer-cap is a number of tickets, or 'none'")
    if buyer_cap is not None and buyer_cap < 1:
        parser.error("--buyer-cap must be >= 1 (or 'none')")
    refinements = args.rate_refinements
    if refinements is None:  # explicit rates are tried as given
        refinements = 0 if args.rates else defaults.rate_refinements
    return BenchConfig(
        phases=tuple(phase for phase in PHASES if phase in phases),  # always in the same order
        buyers=args.buyers,
        tickets=args.tickets,
        workers=args.workers,
        clients=args.clients,
        connections=args.connections,
        duration=args.duration,
        rates=rates,
        rate_refinements=refinements,
        step_duration=args.step_duration,
        open_connections=args.open_connections,
        p99_budget_ms=args.p99_budget_ms,
        journey_users=args.journey_users,
        room_joins=args.room_joins,
        room_prequeue=args.room_prequeue,
        room_tickets=args.room_tickets,
        room_poll=args.room_poll,
        room_join_rate=args.room_join_rate,
        journey_ramp=args.journey_ramp,
        journey_duration=args.journey_duration,
        journey_think=think,
        journey_pay_share=args.journey_pay_share,
        marathon_tickets=args.marathon_tickets,
        marathon_rate=args.marathon_rate,
        marathon_window=args.marathon_window,
        marathon_p99_budget_ms=args.marathon_p99_budget_ms,
        timeout=args.timeout,
        buyer_cap=buyer_cap,
        idempotency_keys=not args.no_idempotency_keys,
        engine=args.engine,
        server=args.server,
        browse_via=args.browse_via,
        postgres_url=args.postgres_url,
        results_dir=args.results_dir,
        extra_app_env=dict(setting.split("=", 1) for setting in args.app_setting),
    )


def _think(parser: argparse.ArgumentParser, text: str) -> tuple[float, float]:
    """MIN,MAX seconds; the minimum must be above 0 (it bounds the tickets the users can hold)."""
    try:
        low, high = (float(bound) for bound in text.split(","))
    except ValueError:
        parser.error(f"--journey-think takes MIN,MAX seconds, not {text!r}")
    if not 0 < low <= high:
        parser.error(f"--journey-think needs 0 < MIN <= MAX, not {text!r}")
    return low, high


def main(argv: list[str] | None = None) -> int:
    config = parse(sys.argv[1:] if argv is None else argv)
    console = Console()
    try:
        return uvloop.run(run(config, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("[yellow]interrupted: the stack was torn down[/yellow]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
