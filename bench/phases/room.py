"""`room` (opt-in): a waiting room on "auto" in front of a sale of T tickets (5,000). J buyers of
their own (50,000) join it: P of them (20,000) during the pre-queue, the rest once the sale has
opened. Each looks at their place when the room says (`look_again_seconds`, jittered: the
heartbeat; `room_poll` seconds if it says nothing), books one
ticket with their admission token once admitted, and stops once told the sale sold out. Some
bookings are sent without any admission meanwhile: every one must be refused.

Driven from the bench process (asyncio + aiohttp over `room_connections` connections), not the
load generator's processes: each buyer is a little conversation, not one request. Reported: the
room's admissions/s against the engine's holds/s (burst's, when it ran first), the admitted
buyers' hold latency, bookings without admission accepted (must be 0), a chi-square test of the
pre-queue's admission order against its join order (must look independent: a uniform shuffle),
buyers admitted ahead of someone who had joined before them (must be 0), and the queue
endpoints' requests/s against `ceiling`'s (when it ran first)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.app_metrics import ServerLatency, answered_within, metric_totals
from bench.booking_desk import BookingDesk
from bench.context import Context, PhaseResult
from bench.invariants import OK, check_sale_by_count
from bench.phases.common import finish, measured
from bench.requests import LookRequests, Outcome
from bench.room_stats import Arrival, join_vs_admission, overtakers
from bench.seed import Sale, access_tokens, accounts
from bench.stats import latency_summary
from ticketflow.domain import commands as cmd

FAR = timedelta(days=1)  # the sale's opening until the pre-queue has joined
RETRIES = 20  # a queue request answered 503 (load shed) is asked again, at most this often
OPENING_IN = 2.0  # seconds from the pre-queue's last join to the opening (>> the copies' 0.5 s)
ROOM = {"enabled": True, "admit_per_minute": "auto", "session_minutes": 10}
API = "/api/v1"
BOOKING_CONNECTIONS = 64
ROOM_COUNTERS = (
    "ticketflow_waiting_room_admitted_total",
    "ticketflow_waiting_room_abandoned_total",
)
LAG_PROBE_SECONDS = 0.05  # how often the bench's own event loop is checked for lateness
LOOKED_AT = 2_000  # places waiting in the room whose looks measure the queue's own ceiling
# That room admits one a minute: its places wait, with positions, while they are looked at.
SLOW_ROOM = {"enabled": True, "admit_per_minute": 1, "session_minutes": 10}


@dataclass
class Buyer:
    token: str
    sent: float = 0.0  # its join
    answered: float = 0.0
    ticket_id: str = ""
    pre_queue: bool = False  # answered without a position: the pre-queue's order is not drawn
    admitted_at: float | None = None  # the admission token's `iat`
    booked: int | None = None  # status of its booking
    looks: int = 0  # looks answered 200 (its heartbeats, as far as it knows)
    last_look: float = 0.0
    asked: list[tuple[float, int]] = field(default_factory=list)  # (answered at, status)
    last_state: str = ""


@dataclass
class Tally:
    queue_requests: int = 0
    shed: int = 0  # queue requests answered 503 + Retry-After (then asked again)
    errors: dict[str, int] = field(default_factory=dict)
    holds: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 60_000_000, 3))
    unadmitted: dict[int, int] = field(default_factory=dict)
    client_lag: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 60_000_000, 3))
    pool_wait: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 600_000_000, 3))
    server_holds: ServerLatency | None = None
    room_counters: dict[str, float] | None = None

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def room(context: Context) -> PhaseResult:
    config = context.config
    await context.app.ensure(config.engine)
    with context.console.status(f"room: seeding {config.room_joins:,} buyers of its own"):
        buyers = [
            Buyer(token)
            for token in access_tokens(context.bus, await accounts(context.bus, config.room_joins))
        ]
    sale = await context.new_sale(
        config.room_tickets,
        title="Bench waiting room",
        sales_start=context.bus.deps.clock.now() + FAR,
        waiting_room=ROOM,
        max_tickets_per_buyer=None,
    )
    tally, sold_out, opened = Tally(), asyncio.Event(), _Opening()
    rate = config.room_join_rate
    base = context.app.running.base_url
    holds_before = await answered_within(base, "POST", f"{API}/bookings", 201)
    lag = asyncio.create_task(_own_lag(tally.client_lag))
    # The timeout counts from the request's turn for a connection, not from its wish to send:
    # a queue of looks waiting for the pool is the client's, not the app's.
    timeout = aiohttp.ClientTimeout(sock_connect=config.timeout, sock_read=config.timeout)
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(
            base,
            connector=aiohttp.TCPConnector(limit=config.room_connections),
            timeout=timeout,
            trace_configs=[_pool_waits(tally.pool_wait)],
        ) as http,
        # Bookings on connections of their own, as each buyer's browser has: an admitted
        # buyer's hold does not wait behind thousands of other people's looks in our pool,
        # nor behind their conversations on our event loop (bench/booking_desk.py).
        BookingDesk(base, BOOKING_CONNECTIONS, timeout) as booking_http,
    ):
        visit = _Visits(
            http, booking_http, sale.event_id, sale.ticket_type_id, config.room_poll, tally
        )
        early = buyers[: config.room_prequeue]
        late = buyers[config.room_prequeue :]
        waiting_for = len(early)
        pre_queue_joined = asyncio.Event()

        def joined() -> None:
            nonlocal waiting_for
            waiting_for -= 1
            if waiting_for == 0:
                pre_queue_joined.set()

        tasks = [
            asyncio.create_task(visit.buyer(b, opened, sold_out, joined, _arrival(n, rate)))
            for n, b in enumerate(early)
        ]
        if early:
            await pre_queue_joined.wait()
        # Then its organizer opens the sale, as one would: every early join was before it.
        opened.at = time.time() + OPENING_IN
        opening = context.bus.deps.clock.now() + timedelta(seconds=OPENING_IN)
        await context.bus.handle(
            cmd.UpdateEvent(context.organizer, UUID(sale.event_id), {"sales_start": opening})
        )
        await asyncio.sleep(max(0.0, opened.at - time.time()))
        tasks += [
            asyncio.create_task(visit.buyer(b, opened, sold_out, arrival=_arrival(n, rate)))
            for n, b in enumerate(late)
        ]
        probes = [visit.unadmitted(buyers[n % len(buyers)]) for n in range(config.room_unadmitted)]
        await asyncio.gather(*tasks, *probes)
    elapsed = time.monotonic() - started
    lag.cancel()
    tally.server_holds = ServerLatency.between(
        holds_before, await answered_within(base, "POST", f"{API}/bookings", 201)
    )
    tally.room_counters = await metric_totals(base, ROOM_COUNTERS, missing_is_zero=True)
    result = await _result(context, sale, buyers, tally, elapsed, opened.at)
    _keep_buyers(context.config.results_dir / "room-buyers.json", buyers, opened.at)
    await _queue_ceiling(context, [b.token for b in buyers[:LOOKED_AT]], result)
    return await finish(context, result)


async def _queue_ceiling(context: Context, tokens: list[str], result: PhaseResult) -> None:
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
    async with aiohttp.ClientSession(context.app.running.base_url) as http:
        joins = asyncio.Semaphore(BOOKING_CONNECTIONS)

        async def join(token: str) -> None:
            async with joins, http.post(queue, headers={"Authorization": f"Bearer {token}"}) as a:
                if a.status == 200:
                    places.append((token, (await a.json())["ticket_id"]))

        await asyncio.gather(*(join(token) for token in tokens))
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
            "last_state": b.last_state,
            "asked": [(round(at - start, 2), status) for at, status in b.asked],
        }
        for b in buyers
    ]
    path.write_text(json.dumps(rows))


def _pool_waits(waits: HdrHistogram) -> aiohttp.TraceConfig:
    """Records how long each queue request waited for one of the bench's connections: a wait
    the app never sees, during which the buyer's look has not reached it."""
    trace = aiohttp.TraceConfig()

    async def queued(session: Any, context: Any, params: Any) -> None:
        context.queued_at = time.monotonic()

    async def dequeued(session: Any, context: Any, params: Any) -> None:
        waits.record_value(max(1, round((time.monotonic() - context.queued_at) * 1e6)))

    trace.on_connection_queued_start.append(queued)
    trace.on_connection_queued_end.append(dequeued)
    return trace


async def _own_lag(lag: HdrHistogram) -> None:
    """How late this process's own timers fire while it drives the room: its latencies of the
    admitted buyers' holds include this much of its own waiting."""
    while True:
        due = time.monotonic() + LAG_PROBE_SECONDS
        await asyncio.sleep(LAG_PROBE_SECONDS)
        lag.record_value(max(1, round((time.monotonic() - due) * 1e6)))


@dataclass
class _Opening:
    at: float = float("inf")  # epoch seconds: when the sale opens, once the organizer says so


class _Visits:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        booking_http: BookingDesk,
        event_id: str,
        ticket_type_id: str,
        poll: float,
        tally: Tally,
    ) -> None:
        self._http, self._event_id, self._poll, self._tally = http, event_id, poll, tally
        self._booking_http = booking_http
        self._booking = {
            "event_id": event_id,
            "lines": [{"ticket_type_id": ticket_type_id, "quantity": 1}],
        }

    async def buyer(
        self,
        buyer: Buyer,
        opening: _Opening,
        sold_out: asyncio.Event,
        joined: Callable[[], None] = lambda: None,
        arrival: float = 0.0,
    ) -> None:
        await asyncio.sleep(arrival)  # joins arrive at `room_join_rate`, not all at once
        headers = {"Authorization": f"Bearer {buyer.token}"}
        queue = f"{API}/events/{self._event_id}/queue"
        buyer.sent = time.monotonic()
        place = await self._ask("POST", queue, headers, buyer.asked)
        buyer.answered = time.monotonic()
        joined()
        if place is None:
            return
        buyer.ticket_id, buyer.pre_queue = place["ticket_id"], place["position"] is None
        while place["state"] == "waiting" and not sold_out.is_set():
            # As a client should: when the room says (`look_again_seconds`, 2-30 s, sooner
            # the nearer its turn), jittered so that people who joined together spread out.
            wait = random.uniform(0.8, 1.0) * (place.get("look_again_seconds") or self._poll)
            if buyer.pre_queue and time.time() < opening.at:  # looking on until the opening,
                wait = min(wait, max(0.0, opening.at - time.time()) + random.uniform(0, wait))
            await asyncio.sleep(wait)
            place = await self._ask("GET", f"{queue}/{buyer.ticket_id}", headers, buyer.asked)
            if place is None:
                return
            buyer.looks += 1
            buyer.last_look = time.monotonic()
            buyer.last_state = place["state"]
        token = place.get("admission_token")
        if place["state"] != "admitted" or not token or sold_out.is_set():
            return
        buyer.admitted_at = _issued_at(token)
        try:
            buyer.booked, took = await self._booking_http.post(
                f"{API}/bookings",
                self._booking,
                {**headers, **_key(), "TicketFlow-Admission": token},
            )
        except (aiohttp.ClientError, TimeoutError) as failed:
            self._tally.error(f"POST bookings {type(failed).__name__}")
            return
        self._tally.holds.record_value(max(1, round(took * 1e6)))
        if buyer.booked == 409:
            sold_out.set()  # a real client stops looking once the sale is over

    async def unadmitted(self, buyer: Buyer) -> None:
        """A booking without any admission, once the sale is open: it must be refused."""
        await asyncio.sleep(random.uniform(0, 5))
        headers = {"Authorization": f"Bearer {buyer.token}", **_key()}
        try:
            status, _ = await self._booking_http.post(f"{API}/bookings", self._booking, headers)
        except (aiohttp.ClientError, TimeoutError) as failed:
            self._tally.error(f"POST unadmitted booking {type(failed).__name__}")
            return
        self._tally.unadmitted[status] = self._tally.unadmitted.get(status, 0) + 1

    async def _ask(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        asked: list[tuple[float, int]] | None = None,
    ) -> dict[str, Any] | None:
        """The place, asking again after `Retry-After` while the app sheds load (503), as a
        client should; None if it gave another answer or none. `asked`: when each answer came,
        and its status."""
        for _ in range(RETRIES):
            self._tally.queue_requests += 1
            try:
                async with self._http.request(method, path, headers=headers) as answer:
                    body = await answer.read()
                    retry_after = answer.headers.get("Retry-After")
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as failed:
                self._tally.error(f"{method} queue {type(failed).__name__}")
                return None
            if asked is not None:
                asked.append((time.monotonic(), status))
            if status == 200:
                place: dict[str, Any] = json.loads(body)
                return place
            if status != 503 or retry_after is None:
                self._tally.error(f"{method} queue {status}")
                return None
            self._tally.shed += 1
            await asyncio.sleep(float(retry_after) * random.uniform(1, 2))
        self._tally.error(f"{method} queue 503 {RETRIES} times")
        return None


def _arrival(index: int, rate: float) -> float:
    """Seconds from its group's start to the index-th join, at `rate` joins a second."""
    return index / rate


def _key() -> dict[str, str]:
    """A fresh Idempotency-Key, as every booking of the benchmark carries."""
    return {"Idempotency-Key": f"bench-room-{uuid.uuid4()}"}


def _issued_at(token: str) -> float:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["iat"])


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
