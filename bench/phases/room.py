"""`room` (opt-in): a waiting room on "auto" in front of a sale of T tickets (5,000). J buyers of
their own (50,000) join it: P of them (20,000) during the pre-queue, the rest once the sale has
opened. Each looks at their place when the room says (`look_again_seconds`, jittered: the
heartbeat; `room_poll` seconds if it says nothing), books one ticket with their admission token
once admitted, and stops once told the sale sold out. Some bookings are sent without any
admission meanwhile: every one must be refused.

Driven from the load generator's processes (bench/room_crowd.py: each its share of the buyers
and of `room_connections` raw keep-alive connections); the sale's opening is announced with it,
the pre-queue joining in the seconds before. Reported: the room's admissions/s against the
engine's holds/s (burst's, when it ran first), the admitted buyers' hold latency, bookings
without admission accepted (must be 0), a chi-square test of the pre-queue's admission order
against its join order (must look independent: a uniform shuffle), buyers admitted ahead of
someone who had joined before them (must be 0), and the queue endpoints' requests/s against
`ceiling`'s (when it ran first)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.app_metrics import ServerLatency, answered_within, metric_totals
from bench.config import CORES
from bench.context import Context, PhaseResult
from bench.cpu import share_between
from bench.invariants import OK, check_sale_by_count
from bench.phases.common import finish, measured
from bench.recorder import new_histogram
from bench.requests import LookRequests, Outcome
from bench.room_crowd import PREQUEUE_ENDS, Buyer, CrowdResult, RoomPlan
from bench.room_stats import Arrival, join_vs_admission, overtakers
from bench.seed import Sale, access_tokens, accounts
from bench.stats import latency_summary

GETTING_READY = 5.0  # seconds for the load generator to take the job and open its connections
LONGEST = 1_800.0  # seconds the crowd may take at most (a guard: a full run takes 2-4 minutes)
ROOM = {"enabled": True, "admit_per_minute": "auto", "session_minutes": 10}
API = "/api/v1"
BOOKING_CONNECTIONS = 64
JOIN_RETRIES = 5  # a join of the queue ceiling's room answered 503 is asked again this often
ROOM_COUNTERS = (
    "ticketflow_waiting_room_admitted_total",
    "ticketflow_waiting_room_abandoned_total",
)
LOOKED_AT = 2_000  # places waiting in the room whose looks measure the queue's own ceiling
# That room admits one a minute: its places wait, with positions, while they are looked at.
SLOW_ROOM = {"enabled": True, "admit_per_minute": 1, "session_minutes": 10}


@dataclass
class Tally:
    """The crowd's processes' tallies, merged."""

    queue_requests: int = 0
    shed: int = 0  # queue requests answered 503 + Retry-After (then asked again)
    errors: dict[str, int] = field(default_factory=dict)
    holds: HdrHistogram = field(default_factory=new_histogram)
    unadmitted: dict[int, int] = field(default_factory=dict)
    client_lag: HdrHistogram = field(default_factory=new_histogram)
    pool_wait: HdrHistogram = field(default_factory=new_histogram)
    server_holds: ServerLatency | None = None
    room_counters: dict[str, float] | None = None

    def add(self, seen: CrowdResult) -> None:
        self.queue_requests += seen.queue_requests
        self.shed += seen.shed
        for kind, count in seen.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        for status, count in seen.unadmitted.items():
            self.unadmitted[status] = self.unadmitted.get(status, 0) + count
        self.holds.add(HdrHistogram.decode(seen.holds))
        self.client_lag.add(HdrHistogram.decode(seen.loop_lag))
        self.pool_wait.add(HdrHistogram.decode(seen.pool_wait))


async def room(context: Context) -> PhaseResult:
    config = context.config
    await context.app.ensure(config.engine)
    with context.console.status(f"room: seeding {config.room_joins:,} buyers of its own"):
        tokens = access_tokens(context.bus, await accounts(context.bus, config.room_joins))
    rate = config.room_join_rate
    # The opening is announced with the sale, as an on-sale's is (bench/room_crowd.py says
    # why): after the load generator is ready, and the pre-queue's joins.
    opened_at = time.time() + GETTING_READY + PREQUEUE_ENDS + config.room_prequeue / rate
    sale = await context.new_sale(
        config.room_tickets,
        title="Bench waiting room",
        sales_start=context.bus.deps.clock.now() + timedelta(seconds=opened_at - time.time()),
        waiting_room=ROOM,
        max_tickets_per_buyer=None,
    )
    plan = RoomPlan(
        sale.event_id,
        sale.ticket_type_id,
        tokens,
        opened_at,
        config.room_prequeue,
        rate,
        config.room_poll,
        BOOKING_CONNECTIONS,
        config.room_unadmitted,
    )
    base = context.app.running.base_url
    holds_before = await answered_within(base, "POST", f"{API}/bookings", 201)
    job = context.job(
        mode="room", requests=plan, connections=config.room_connections, duration=LONGEST
    )
    run = await context.drive_raw(job, "room: the crowd joins, looks, books")
    elapsed = time.monotonic() - run.start_at
    tally = Tally()
    buyers: list[Buyer] = []
    for seen in run.results:
        tally.add(seen)
        buyers += seen.buyers
    buyers.sort(key=lambda buyer: buyer.number)
    tally.server_holds = ServerLatency.between(
        holds_before, await answered_within(base, "POST", f"{API}/bookings", 201)
    )
    tally.room_counters = await metric_totals(base, ROOM_COUNTERS, missing_is_zero=True)
    result = await _result(context, sale, buyers, tally, elapsed, opened_at)
    result.details["cpu"] = share_between(run.cpu_before, run.cpu_after).as_dict(CORES)
    _keep_buyers(context.config.results_dir / "room-buyers.json", buyers, opened_at)
    await _queue_ceiling(context, tokens[:LOOKED_AT], result)
    return await finish(context, result)


async def _queue_ceiling(context: Context, tokens: tuple[str, ...], result: PhaseResult) -> None:
    """The queue endpoints' own rate, measured like `ceiling`'s: what the sale above shows is
    how often its crowd looks (its demand), not how fast looks can be answered. Places waiting
    in a room of their own, each looked at by its owner in turn, closed loop, on the load
    generator with `ceiling`'s connections and duration."""
    config = context.config
    room = await context.new_sale(
        1, title="Bench waiting room looks", waiting_room=SLOW_ROOM, max_tickets_per_buyer=None
    )
    queue = f"{API}/events/{room.event_id}/queue"
    places: list[tuple[str, str]] = []
    refused: dict[int, int] = {}  # join answers other than 200 and 503, by status
    async with aiohttp.ClientSession(context.app.running.base_url) as http:
        joins = asyncio.Semaphore(BOOKING_CONNECTIONS)

        async def join(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with joins:
                for _ in range(JOIN_RETRIES):
                    async with http.post(queue, headers=headers) as answer:
                        if answer.status == 200:
                            places.append((token, (await answer.json())["ticket_id"]))
                            return
                        if answer.status != 503:
                            refused[answer.status] = refused.get(answer.status, 0) + 1
                            return
                        # Shed: as a client should, after Retry-After.
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))

        await asyncio.gather(*(join(token) for token in tokens))
    result.details["queue_ceiling_joins_refused"] = refused
    job = context.job(
        mode="closed",
        requests=LookRequests(room.event_id, tuple(places)),
        connections=config.connections,
        duration=config.duration,
    )
    m = await context.drive(job, "room: the queue's own ceiling (looks)")
    per_s = m.count(Outcome.OK) / m.elapsed
    ceiling = context.results.get("ceiling")
    result.summary |= {
        "queue_ceiling_places": len(places),
        "queue_ceiling_req_per_s": round(per_s),
        "queue_ceiling_errors": m.count(Outcome.ERROR) + m.count(Outcome.TIMEOUT),
        "queue_ceiling_share_of_ceiling": (
            round(per_s / ceiling.summary["req_per_s"], 3) if ceiling else None
        ),
    }
    for outcome, figures in m.outcomes().items():
        result.outcomes[f"look {outcome} (queue ceiling)"] = figures
    result.details["queue_ceiling"] = measured(m)


def _keep_buyers(path: Path, buyers: list[Buyer], opened_at: float) -> None:
    """Each buyer's conversation, in joining order, for questions the summary does not answer
    (who was admitted when, against when they joined and looked): seconds from the opening."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = buyers[0].sent if buyers else 0.0
    rows = [
        {
            "joined_s": round(b.sent - start, 3),
            "answered_s": round(b.answered - start, 3),
            "pre_queue": b.pre_queue,
            "admitted_after_opening_s": (
                None if b.admitted_at is None else round(b.admitted_at - opened_at, 3)
            ),
            "looks": b.looks,
            "last_look_s": round(b.last_look - start, 3) if b.last_look else None,
            "booked": b.booked,
            "booked_in_s": None if b.booked_in is None else round(b.booked_in, 4),
            "last_state": b.last_state,
            "asked": [(round(at - start, 2), status) for at, status in b.asked],
        }
        for b in buyers
    ]
    path.write_text(json.dumps(rows))


async def _result(
    context: Context,
    sale: Sale,
    buyers: list[Buyer],
    tally: Tally,
    elapsed: float,
    opened_at: float,
) -> PhaseResult:
    admitted = [b for b in buyers if b.admitted_at is not None]
    held = [b for b in buyers if b.booked == 201]
    pre = sorted((b for b in admitted if b.pre_queue), key=lambda b: b.answered)
    later = [Arrival(b.sent, b.answered, b.admitted_at or 0) for b in admitted if not b.pre_queue]
    checks, count = await check_sale_by_count(
        context.bus.engine,
        sale,
        len(held),
        sum(tally.errors.values()),
        sum(b.booked == 409 for b in buyers),
    )
    accepted_unadmitted = sum(n for status, n in tally.unadmitted.items() if 200 <= status < 300)
    checks["no booking without admission accepted"] = (
        OK if not accepted_unadmitted else f"BROKEN: {accepted_unadmitted} accepted"
    )
    out_of_order = overtakers(later)
    checks["no later joiner admitted ahead"] = OK if not out_of_order else f"BROKEN: {out_of_order}"
    independence = join_vs_admission([b.admitted_at or 0 for b in pre]) if len(pre) >= 32 else None
    if independence is not None:
        checks["pre-queue order independent of joining order"] = (
            OK if independence.uniform else f"BROKEN: chi-square {independence.chi_square:.1f}"
        )
    span = max(b.admitted_at or 0 for b in admitted) - opened_at if admitted else 0
    burst = context.results.get("burst")
    ceiling = context.results.get("ceiling")
    queue_per_s = tally.queue_requests / elapsed if elapsed else 0.0
    server = tally.server_holds
    summary = {
        "joins": len(buyers),
        "pre_queue_joins": sum(b.pre_queue for b in buyers),
        "admitted": len(admitted),
        "held": len(held),
        "stored_held": count.held,
        "left": count.available,
        "admissions_per_s": round(len(admitted) / span, 1) if span > 0 else None,
        "engine_holds_per_s": burst.summary.get("holds_per_s") if burst else None,
        "hold_p99_ms": latency_summary(tally.holds)["p99_ms"] if held else None,
        # The same holds as the app timed them, and the bench's own lateness meanwhile.
        "app_hold_within_100ms": server.within_100ms if server else None,
        "app_hold_p99_at_most_ms": server.p99_at_most_ms if server else None,
        "bench_loop_lag_p99_ms": latency_summary(tally.client_lag)["p99_ms"],
        "bench_pool_wait_p99_ms": (
            latency_summary(tally.pool_wait)["p99_ms"] if tally.pool_wait.get_total_count() else 0
        ),
        "abandoned": (
            round(tally.room_counters[ROOM_COUNTERS[1]]) if tally.room_counters else None
        ),
        "unadmitted_sent": sum(tally.unadmitted.values()),
        "unadmitted_accepted": accepted_unadmitted,
        "pre_queue_chi_square": round(independence.chi_square, 1) if independence else None,
        "pre_queue_chi_square_critical": round(independence.critical, 1) if independence else None,
        "out_of_order_after_opening": out_of_order,
        "queue_req_per_s": round(queue_per_s),
        "queue_shed_503": tally.shed,
        "queue_share_of_ceiling": (
            round(queue_per_s / ceiling.summary["req_per_s"], 3) if ceiling else None
        ),
    }
    return PhaseResult(
        "room",
        summary=summary,
        outcomes={"held (admitted buyers)": latency_summary(tally.holds)} if held else {},
        checks=checks,
        details={"errors": tally.errors, "unadmitted_statuses": tally.unadmitted},
        notes=[
            "admission times are whole seconds (the token's iat): the order checks compare "
            "seconds; 'auto' follows each app process's own measure of its holds/s"
        ],
    )
