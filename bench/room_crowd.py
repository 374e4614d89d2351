"""The `room` phase's crowd in one load-generator process: its share of the buyers, each a little
conversation (join; look at the place when the room says; book once admitted; stop once told the
sale sold out: a booking refused 409, or a look answering no tickets left), over the process's
share of the raw keep-alive connections (bench/http.py).

At full scale (50,000 buyers) the crowd was driven from the bench's own process with aiohttp:
that one event loop ran 0.4-0.7 s late at p99 and looks waited up to a minute for one of its
connections, so places whose owners kept asking went unseen by the app for longer than the
abandonment time and were skipped (553-2,420 a run), which failed the pre-queue's independence
test for a reason that was the bench's. Here the crowd is spread over the load generator's
processes, on the client that costs ~19 us a request against aiohttp's ~74 (bench/http.py).

The sale's opening is announced before anyone joins, as an on-sale's is: the pre-queue arrives
in the seconds before it, and the room, which knows the opening, tells each of them to look
again at a quarter of the time left (`look_again_seconds`), so they all look within a few
seconds of the opening whenever they joined. (Announced a day ahead and then moved to "now",
the pre-queue would have been told to look again in 30 s, the longest, and would first look
after the opening in the order it joined: who joined first learned first of an admission, and
more often before the sale sold out.)"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from bench.connections import connect
from bench.http import Answer, HttpConnection, build_request
from bench.recorder import MAX_LATENCY_US, new_histogram

API = "/api/v1"
RETRIES = 20  # a queue request answered 503 (load shed) is asked again, at most this often
LAG_PROBE_SECONDS = 0.05  # how often the process's own event loop is checked for lateness
UNADMITTED_WITHIN = 5.0  # seconds after the opening in which the bookings without admission go
PREQUEUE_ENDS = 3.0  # seconds before the opening by which the last of the pre-queue has joined
REPLACE_AFTER = 1.0  # seconds before trying again to open a connection the server refused


@dataclass(frozen=True)
class RoomPlan:
    """The room's crowd, the same for every process (each plays buyers share, share + of, ...)."""

    event_id: str
    ticket_type_id: str
    tokens: tuple[str, ...]  # buyer n's access token
    opens_at: float  # the sale's opening, epoch seconds, announced before anyone joins
    prequeue: int  # buyers 0 .. prequeue - 1 join before the opening
    join_rate: float  # joins a second, in each group, over all processes
    poll: float  # seconds between looks when the room does not say
    booking_connections: int  # over all processes, for the admitted buyers' bookings
    unadmitted: int  # bookings sent without any admission, over all processes


@dataclass
class Buyer:
    """What one buyer did and was told (times: time.monotonic(), the same clock in every
    process; `admitted_at`: the admission token's `iat`, epoch seconds)."""

    number: int
    sent: float = 0.0  # its join
    answered: float = 0.0
    ticket_id: str = ""
    pre_queue: bool = False  # answered without a position: the pre-queue's order is not drawn
    admitted_at: float | None = None
    booked: int | None = None  # status of its booking
    booked_in: float | None = None  # seconds from wanting to send it to its answer
    looks: int = 0  # looks answered 200 (its heartbeats, as far as it knows)
    last_look: float = 0.0
    asked: list[tuple[float, int]] = field(default_factory=list)  # (answered at, status)
    last_state: str = ""


@dataclass
class CrowdResult:
    """One process's buyers and tallies; histograms encoded (HdrHistogram.encode)."""

    buyers: list[Buyer]
    queue_requests: int
    shed: int  # queue requests answered 503 + Retry-After (then asked again)
    errors: dict[str, int]
    holds: bytes  # the admitted buyers' bookings, from wanting to send to the answer, us
    unadmitted: dict[int, int]  # status -> count of the bookings sent without admission
    loop_lag: bytes  # how late this process's timers fired, us
    pool_wait: bytes  # how long a queue request waited for one of our connections, us


class Pool:
    """Keep-alive connections shared by many conversations: a request waits in arrival order for
    an idle one, and a connection that timed out or was closed is replaced by a new one."""

    def __init__(
        self,
        connections: list[HttpConnection],
        address: tuple[str, int],
        timeout: float,
        waits: HdrHistogram | None = None,
    ) -> None:
        self._idle = list(connections)
        self._all = set(connections)
        self._waiting: list[asyncio.Future[HttpConnection]] = []
        self._address, self._timeout, self._waits = address, timeout, waits
        self._replacing: set[asyncio.Task[None]] = set()  # the loop keeps weak references

    async def request(self, request: bytes) -> Answer:
        """The answer; TimeoutError after `timeout` s on the wire, OSError if the connection
        failed. The wait for a connection is not on the wire: it is recorded apart."""
        queued = time.monotonic()
        connection = await self._take()
        if self._waits is not None:
            self._waits.record_value(min(MAX_LATENCY_US, max(1, _us(time.monotonic() - queued))))
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Answer | BaseException] = loop.create_future()

        def done(_: HttpConnection, answer: Answer | BaseException) -> None:
            if not outcome.done():
                outcome.set_result(answer)

        connection.send(request, done)
        timer = loop.call_later(
            self._timeout, connection.abort, TimeoutError(f"no answer within {self._timeout}s")
        )
        try:
            answer = await outcome
        finally:
            timer.cancel()
            self._give_back(connection)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        for connection in self._all:
            connection.abort(None)

    async def _take(self) -> HttpConnection:
        if self._idle and not self._waiting:
            return self._idle.pop()
        turn: asyncio.Future[HttpConnection] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        return await turn

    def _give_back(self, connection: HttpConnection) -> None:
        if connection.closed:
            self._all.discard(connection)
            task = asyncio.ensure_future(self._replace())
            self._replacing.add(task)
            task.add_done_callback(self._replacing.discard)
            return
        while self._waiting:
            turn = self._waiting.pop(0)
            if not turn.done():
                turn.set_result(connection)
                return
        self._idle.append(connection)

    async def _replace(self) -> None:
        while True:
            try:
                connection = await connect(*self._address)
                break
            except OSError:
                await asyncio.sleep(REPLACE_AFTER)  # refused now: the server may be busy
        self._all.add(connection)
        self._give_back(connection)


class Crowd:
    """One process's buyers; `run` plays them from `start_at` and returns what they saw."""

    def __init__(
        self,
        plan: RoomPlan,
        share: int,
        of: int,
        address: tuple[str, int],
        timeout: float,
        answered: Callable[[], None],
    ) -> None:
        self.plan, self._address, self._timeout, self._answered = plan, address, timeout, answered
        self.buyers = [Buyer(n) for n in range(share, len(plan.tokens), of)]
        self._probes = range(share, plan.unadmitted, of)
        self._of = of
        self._sold_out = asyncio.Event()
        self._looking_later: set[asyncio.Future[None]] = set()
        self._queue = f"{API}/events/{plan.event_id}/queue"
        line = {"ticket_type_id": plan.ticket_type_id, "quantity": 1}
        self._booking = json.dumps({"event_id": plan.event_id, "lines": [line]}).encode()
        self._queue_requests = self._shed = 0
        self._errors: dict[str, int] = {}
        self._unadmitted: dict[int, int] = {}
        self._holds, self._lag, self._waits = new_histogram(), new_histogram(), new_histogram()

    @property
    def booking_connections(self) -> int:
        """This process's share of the connections the admitted buyers' bookings go on."""
        return max(1, round(self.plan.booking_connections / self._of))

    async def run(
        self,
        connections: list[HttpConnection],
        booking_connections: list[HttpConnection],
    ) -> CrowdResult:
        """`connections` for joins and looks; `booking_connections` for bookings alone, as each
        buyer's browser has its own: an admitted buyer's hold does not wait behind thousands of
        other people's looks."""
        looks = Pool(connections, self._address, self._timeout, self._waits)
        bookings = Pool(booking_connections, self._address, self._timeout)
        lag = asyncio.create_task(self._own_lag())
        opening = time.monotonic() + self.plan.opens_at - time.time()
        rate, prequeue = self.plan.join_rate, self.plan.prequeue
        try:
            # The pre-queue arrives over the time before the opening, ending PREQUEUE_ENDS
            # before it; the rest from the opening on.
            tasks = [
                asyncio.create_task(
                    self._buyer(
                        b,
                        looks,
                        bookings,
                        opening - PREQUEUE_ENDS - (prequeue - b.number) / rate
                        if b.number < prequeue
                        else opening + (b.number - prequeue) / rate,
                    )
                )
                for b in self.buyers
            ]
            tasks += [
                asyncio.create_task(self._unadmitted_booking(n, bookings, opening))
                for n in self._probes
            ]
            await asyncio.gather(*tasks)
        finally:
            lag.cancel()
            looks.close()
            bookings.close()
        return CrowdResult(
            self.buyers,
            self._queue_requests,
            self._shed,
            self._errors,
            self._holds.encode(),
            self._unadmitted,
            self._lag.encode(),
            self._waits.encode(),
        )

    async def _buyer(self, buyer: Buyer, looks: Pool, bookings: Pool, arrives_at: float) -> None:
        await _wait_until(arrives_at)  # joins arrive at the plan's rate, not all at once
        auth = {"Authorization": f"Bearer {self.plan.tokens[buyer.number]}"}
        buyer.sent = time.monotonic()
        place = await self._ask(looks, build_request("POST", self._queue, auth), buyer)
        buyer.answered = time.monotonic()
        if place is None:
            return
        buyer.ticket_id, buyer.pre_queue = place["ticket_id"], place["position"] is None
        look = build_request("GET", f"{self._queue}/{buyer.ticket_id}", auth)
        while place["state"] == "waiting" and not self._sold_out.is_set():
            if place.get("tickets_left") == 0:
                # Every ticket is sold or held by someone admitted: nobody more will be (the
                # room admits no more buyers than tickets are left for), until held tickets
                # come back, which this sale's buyers (holding, never cancelling) don't do.
                self._stop_looking()
                return
            # As a client should: when the room says (`look_again_seconds`, 2-30 s, sooner the
            # nearer its turn), jittered so that people who joined together spread out.
            told = place.get("look_again_seconds") or self.plan.poll
            await self._until_look(random.uniform(0.8, 1.0) * told)
            place = await self._ask(looks, look, buyer)
            if place is None:
                return
            buyer.looks += 1
            buyer.last_look = time.monotonic()
            buyer.last_state = place["state"]
        token = place.get("admission_token")
        if place["state"] != "admitted" or not token or self._sold_out.is_set():
            return
        buyer.admitted_at = _issued_at(token)
        headers = {**auth, "TicketFlow-Admission": token}
        wanted = time.monotonic()
        answer = await self._book(bookings, headers, "POST bookings")
        if answer is None:
            return
        buyer.booked, buyer.booked_in = answer.status, answer.at - wanted
        self._holds.record_value(min(MAX_LATENCY_US, max(1, _us(buyer.booked_in))))
        if answer.status == 409:
            self._stop_looking()

    def _stop_looking(self) -> None:
        """Sold out: a real client stops looking once the sale is over; those waiting to look
        again are told now, not at their next look (up to 30 s later)."""
        self._sold_out.set()
        for waiting in self._looking_later:
            _wake(waiting)

    async def _until_look(self, seconds: float) -> None:
        """`seconds`, or until the sale sold out if sooner."""
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiting)
        self._looking_later.add(waiting)
        try:
            await waiting
        finally:
            timer.cancel()
            self._looking_later.discard(waiting)

    async def _unadmitted_booking(self, number: int, bookings: Pool, opening: float) -> None:
        """A booking without any admission, once the sale is open: it must be refused."""
        await _wait_until(opening + random.uniform(0, UNADMITTED_WITHIN))
        token = self.plan.tokens[number % len(self.plan.tokens)]
        answer = await self._book(
            bookings, {"Authorization": f"Bearer {token}"}, "POST unadmitted booking"
        )
        if answer is not None:
            self._unadmitted[answer.status] = self._unadmitted.get(answer.status, 0) + 1

    async def _book(self, bookings: Pool, headers: dict[str, str], kind: str) -> Answer | None:
        """One ticket booked with a fresh Idempotency-Key; None if no answer came (counted as
        `kind`'s error)."""
        booking = build_request("POST", f"{API}/bookings", {**headers, **_key()}, self._booking)
        try:
            answer = await bookings.request(booking)
        except (OSError, TimeoutError) as failed:
            self._error(f"{kind} {type(failed).__name__}")
            return None
        self._answered()
        return answer

    async def _ask(self, looks: Pool, request: bytes, buyer: Buyer) -> dict[str, Any] | None:
        """The place, asking again after `Retry-After` while the app sheds load (503), as a
        client should; None if it gave another answer or none."""
        kind = request.split(b" ", 1)[0].decode()
        for _ in range(RETRIES):
            self._queue_requests += 1
            try:
                answer = await looks.request(request)
            except (OSError, TimeoutError) as failed:
                self._error(f"{kind} queue {type(failed).__name__}")
                return None
            self._answered()
            buyer.asked.append((answer.at, answer.status))
            if answer.status == 200:
                place: dict[str, Any] = json.loads(answer.body)
                return place
            if answer.status != 503 or not answer.retry_after:
                self._error(f"{kind} queue {answer.status}")
                return None
            self._shed += 1
            await asyncio.sleep(float(answer.retry_after) * random.uniform(1, 2))
        self._error(f"{kind} queue 503 {RETRIES} times")
        return None

    def _error(self, kind: str) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1

    async def _own_lag(self) -> None:
        """How late this process's own timers fire: its latencies include this much of its own
        waiting."""
        while True:
            due = time.monotonic() + LAG_PROBE_SECONDS
            await asyncio.sleep(LAG_PROBE_SECONDS)
            self._lag.record_value(min(MAX_LATENCY_US, max(1, _us(time.monotonic() - due))))


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


async def _wait_until(instant: float) -> None:
    """Not driver.sleep_until: its last 2 ms spin, which tens of thousands of buyers can't."""
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


def _us(seconds: float) -> int:
    return round(seconds * 1e6)


def _key() -> dict[str, str]:
    """A fresh Idempotency-Key, as every booking of the benchmark carries."""
    return {"Idempotency-Key": f"bench-room-{uuid.uuid4()}"}


def _issued_at(token: str) -> float:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["iat"])
