"""The benchmark's knobs, with the issue's defaults (10,000 buyers for 5,000 tickets)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Every phase known, in the order they run; `marathon` (minutes long) runs only when asked for.
PHASES = (
    "ceiling",
    "burst",
    "sustained",
    "soldout",
    "browse",
    "pages",
    "journey",
    "baseline-lock",
    "marathon",
    "room",
)
OPT_IN = ("marathon", "room")  # minutes long: run only when asked for
DEFAULT_PHASES = tuple(phase for phase in PHASES if phase not in OPT_IN)  # `make bench`
SERVERS = ("granian", "uvicorn")
BROWSE_VIA = ("app", "nginx")
CORES = os.cpu_count() or 1


def doubling(start: int, limit: int) -> tuple[int, ...]:
    rates = [start]
    while rates[-1] * 2 <= limit:
        rates.append(rates[-1] * 2)
    return tuple(rates)


@dataclass(frozen=True)
class BenchConfig:
    phases: tuple[str, ...] = DEFAULT_PHASES
    buyers: int = 10_000  # U: accounts, and connections in burst / baseline-lock
    tickets: int = 5_000  # T: tickets of the burst's (and baseline-lock's) ticket type
    workers: int = CORES  # app worker processes (`ticketflow serve --workers`)
    clients: int = CORES  # load-generator processes
    connections: int = 256  # closed-loop phases: ceiling, soldout, browse, pages
    duration: float = 10.0  # seconds of each closed-loop phase
    rates: tuple[int, ...] = doubling(500, 32_000)  # sustained: requests/s, tried in order
    # sustained: bisections between the last rate that passed and the first that failed
    rate_refinements: int = 3
    step_duration: float = 5.0  # seconds at each sustained rate
    open_connections: int = 1024  # sustained: connections the open-loop requests spread over
    p99_budget_ms: float = 100.0  # sustained: a rate passes with p99 under this and no errors
    # journey: users looping list -> event -> hold -> (pay -> tickets), each on its own connection
    journey_users: int = 5_000
    journey_ramp: float = 30.0  # seconds over which the users start, evenly spread
    journey_duration: float = 300.0  # seconds, from the first user's start
    journey_think: tuple[float, float] = (2.0, 6.0)  # seconds between a user's requests, uniform
    journey_pay_share: float = 0.5  # of the holds, the share paid for (then tickets read)
    # marathon (opt-in): one ticket type of N tickets sold one per booking, open loop
    marathon_tickets: int = 1_000_000
    marathon_rate: int | None = None  # bookings/s; None: sustained's best in this run, else 2,000
    marathon_window: float = 10.0  # seconds of each window of the per-window latency
    marathon_p99_budget_ms: float = 250.0  # every window's p99 must stay under this
    # room (opt-in): a waiting room on "auto" before a sale of room_tickets; room_joins buyers
    # of their own join it, room_prequeue of them before the sale opens, the rest after; each
    # looks at their place every room_poll seconds (jittered) and books once admitted
    room_joins: int = 50_000
    room_prequeue: int = 20_000
    room_tickets: int = 5_000
    room_poll: float = 20.0
    # Connections the room's buyers share for joins and looks (their bookings have their own).
    # Each real buyer has a connection of their own; one process can't open 50,000, so a look
    # may wait for one in the bench's pool, where the app can't hear it: the wait is reported
    # (`bench_pool_wait_p99_ms`), and a place unseen for a minute because of it is skipped, the
    # bench's doing. 2,048 connections made it worse on a slow host: more looks in flight, more
    # refused, the bench's own loop 2.6 s late at p99 (bench/README.md, sixth session).
    room_connections: int = 256
    room_join_rate: float = 2_000.0  # joins a second, the pre-queue's and then the later ones
    room_unadmitted: int = 500  # bookings sent without an admission: every one must be refused
    timeout: float = 30.0  # seconds before a request counts as timed out
    idempotency_keys: bool = True  # every booking request carries a fresh Idempotency-Key
    # burst, baseline-lock, soldout, browse: each buyer's cap on the sale (None: none). A new
    # event's default (10); the phases whose buyers come back many times run uncapped anyway.
    buyer_cap: int | None = 10
    engine: str = "batched"  # TICKETFLOW_BOOKING_ENGINE of every phase but baseline-lock
    server: str = "granian"  # what serves the app: `ticketflow serve`, or uvicorn to compare
    browse_via: str = "app"  # browse: straight to the app, or through nginx's micro-cache
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    results_dir: Path = Path("bench/results")
    extra_app_env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        described = asdict(self)
        described["results_dir"] = str(self.results_dir)
        return described
