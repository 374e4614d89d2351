"""The `journey` load in one load-generator process: its share of the users, each on its own
keep-alive connection (as a JMeter thread has), looping over a buyer's visit — list, event,
hold, and for some holds pay and tickets — with think time between requests. Callback-driven:
a user's next request is a `call_later` timer, never a task."""

from __future__ import annotations

import asyncio
import random
import time

from bench.connections import close_all, connect, watchdog
from bench.driver import sleep_until
from bench.http import Answer, HttpConnection
from bench.journey_record import JourneyRecorder
from bench.journey_requests import (
    QUANTITIES,
    JourneyPlan,
    Route,
    VisitRequests,
    judge,
    next_route,
)
from bench.recorder import MAX_LATENCY_US


class Journeys:
    """One process's users and what they share: the clock, the dice, the recorder."""

    def __init__(
        self,
        plan: JourneyPlan,
        share: int,
        of: int,
        recorder: JourneyRecorder,
        address: tuple[str, int],
    ) -> None:
        self.plan, self.recorder, self.address = plan, recorder, address
        self.numbers = range(share, plan.users, of)  # the users this process plays
        self.dice = random.Random(share)  # the same choices in every run of a plan
        self.requests = VisitRequests(plan)
        self.users: list[User] = []
        self.in_flight = 0
        self.ended = False
        self._finished: asyncio.Future[None] | None = None
        self._reconnecting: set[asyncio.Task[None]] = set()  # the loop keeps weak references

    async def run(
        self, connections: list[HttpConnection], start_at: float, request_timeout: float
    ) -> None:
        """Play every user from `start_at` (ramped) to the plan's end; then wait for the requests
        still in flight (answered, or timed out by the watchdog)."""
        loop = asyncio.get_running_loop()
        self._finished = loop.create_future()
        self.users = [
            User(self, number, connection)
            for number, connection in zip(self.numbers, connections, strict=True)
        ]
        await sleep_until(start_at)
        self.recorder.start(start_at)
        for user in self.users:
            user.wait(start_at + self.plan.starts_after(user.number) - time.monotonic())
        loop.call_later(start_at + self.plan.duration - time.monotonic(), self._end)
        async with watchdog(lambda: [user.connection for user in self.users], request_timeout):
            await self._finished
        self.recorder.stop()
        close_all([user.connection for user in self.users])

    def _end(self) -> None:
        self.ended = True
        for user in self.users:
            user.stop()
        self.finish_if_idle()

    def finish_if_idle(self) -> None:
        if self.ended and not self.in_flight and self._finished and not self._finished.done():
            self._finished.set_result(None)

    def reconnect(self, user: User, then_send: bool) -> None:
        """A new connection for `user`, then its next request now (`then_send`) or after
        thinking; a user whose connection can't be opened again drops out, counted."""
        task = asyncio.ensure_future(self._reconnect(user, then_send))
        self._reconnecting.add(task)
        task.add_done_callback(self._reconnecting.discard)

    async def _reconnect(self, user: User, then_send: bool) -> None:
        self.recorder.reconnects += 1
        try:
            user.connection = await connect(*self.address)
        except OSError as error:
            self.recorder.users_lost += 1
            self.recorder.note_error(f"reconnect failed: {type(error).__name__}")
            return
        if self.ended:
            user.connection.abort(None)  # the run closed the others already
            return
        if then_send:
            user.send()
        else:
            user.think()


class User:
    """One buyer looping over the visit; `route` is the request it sends next."""

    def __init__(self, journeys: Journeys, number: int, connection: HttpConnection) -> None:
        self.journeys, self.number, self.connection = journeys, number, connection
        self.auth = journeys.requests.auth(journeys.plan.token_of(number))
        self.route = Route.LIST
        self.event = 0
        self.quantity = 1
        self.booking = b""
        self.timer: asyncio.TimerHandle | None = None
        self.due = 0.0  # when the timer should send the next request

    def wait(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.due = time.monotonic() + seconds
        self.timer = asyncio.get_running_loop().call_later(seconds, self.timed_send)

    def timed_send(self) -> None:
        # A late timer stretches the think time, so fewer requests are offered: counted.
        late = round((time.monotonic() - self.due) * 1e6)
        self.journeys.recorder.lag.record_value(min(MAX_LATENCY_US, max(1, late)))
        self.send()

    def think(self) -> None:
        if not self.journeys.ended:
            self.wait(self.journeys.dice.uniform(*self.journeys.plan.think))

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def send(self) -> None:
        journeys, route = self.journeys, self.route
        if self.connection.closed:  # the server closed it while we thought: open another first
            journeys.reconnect(self, then_send=True)
            return
        requests, dice = journeys.requests, journeys.dice
        if route is Route.LIST:
            request = requests.listing(self.auth)
        elif route is Route.EVENT:  # one of the listed events: the plan's, which the list shows
            self.event = dice.randrange(len(journeys.plan.event_ids))
            request = requests.event(self.event, self.auth)
        elif route is Route.HOLD:
            self.quantity = dice.choice(QUANTITIES)
            request = requests.hold(self.event, self.quantity, self.auth)
        elif route is Route.PAY:
            request = requests.pay(self.booking, self.auth)
        else:
            request = requests.tickets(self.booking, self.auth)
        journeys.in_flight += 1
        self.connection.send(request, self.answered)

    def answered(self, connection: HttpConnection, outcome: Answer | BaseException) -> None:
        journeys, route, quantity = self.journeys, self.route, self.quantity
        journeys.in_flight -= 1
        ok, booking = judge(route, outcome if isinstance(outcome, Answer) else None, quantity)
        self.booking = booking or self.booking
        journeys.recorder.record(route, outcome, connection.sent_at, ok, self.booking, quantity)
        paying = ok and route is Route.HOLD and journeys.dice.random() < journeys.plan.pay_share
        self.route = next_route(route, ok, paying)
        if journeys.ended:
            journeys.finish_if_idle()
        elif connection.closed:  # timed out, or the server closed it: a new one, as JMeter would
            journeys.reconnect(self, then_send=False)
        else:
            self.think()
