"""Load shedding: past what a process can answer promptly, a request is refused at once with 503
and `Retry-After` instead of queueing until a connection pool times out.

Buyers who keep coming faster than the app answers form a line somewhere. Left alone it forms
at the database pool, where a request waits up to the pool's timeout and then fails as a bug
(issue 15: 500s and 20 s answers at 5,000 users with payments). Here the line is explicit and
short: at most `capacity` requests of a process are worked on at once, the next ones wait in
arrival order for at most `patience` seconds, and whoever is still waiting then is told to come
back (`Retry-After: 1`): a fast, honest answer, and nothing was done for it.

Not in the line: health and metrics (probes must see an overloaded process as alive), the live
availability streams (they stay open for minutes), the payment provider's signed callbacks (a
provider gives up after a few refusals, and a callback is what settles a charge whose answer was
lost; the journey benchmark lost 2,637 of them to this line), and the booking hot path, which
has its own line (api/booking_hot_path.py: admission before anything is done, sold-out answers
at once). Nor a waiting place's stream (it stays open until its turn).

A buyer at the checkout goes first: paying for a hold, or seeing a paid booking's tickets,
waits ahead of everything else in the ordinary line. Refused, a payment leaves tickets held by
someone who wanted them and could not pay, for the rest of the hold, and the work of the visit
that led there wasted; a list or an event refused costs its buyer a retry a second later. (The
journey benchmark at 5,000 users, one line for all: 87% of payments refused alongside 85% of
browsing, while the booking hot path, with its own line, took every hold: 90,508 holds, 5,715
paid.)

And a new hold gives way to a buyer at the checkout: while one waits in the line, a hold is
refused at once (503, nothing done). A hold taken while its buyer could not pay would lock
tickets for the whole hold, and the process's CPU is better spent on the payments of the holds
already made; holds come back as soon as nobody waits to pay. A hold that brings an admission
from a waiting room is not refused so: the room already paces those to what the engine serves,
and its buyer's session runs while they wait. (The journey at 5,000 users with
the checkout first but holds let through: 90,903 holds, of whose payments 66% were refused;
with holds giving way, 10%.)

The catalog's reads (the list and an event) have a line of their own, as long as the ordinary
one: a hit is this process's stored bytes, no database read, so answering it costs about what
refusing it does, and in the ordinary line they were refused behind payments that keep their
place for the whole charge (the journey at 5,000 users: half the lists and event pages refused;
in a line of their own, 2%). A miss reads the database, bounded by this line.

Looks at waiting places (every waiting buyer's heartbeat) have a line of their own, a
`room_share` of the capacity: tens of thousands of people waiting look
far more often than the admitted few book, and on a busy process the looks are what must give
way, so the admitted buyers' holds are not kept waiting behind them on the event loop (the room
benchmark: holds p99 above 1 s while the process answered looks). A look refused is cheap to
repeat: the client looks again after `Retry-After`, which for a look is LOOK_RETRY_AFTER_SECONDS,
not the 1 s of other refusals: tens of thousands of people told to look again within a second
or two of a refusal made a storm of refused looks (581,055 in one room benchmark, the bench's
own pool jammed for a minute), and a refused look needs no quick retry, since it was heard
(below) and the place's answer would change little in 5 s. And a refused look is still a heartbeat:
the buyer is there, asking; it is the app that is busy. Counted as absence, a busy app would
skip the places whose looks it happened to refuse for a minute, those of the buyers whose
looks fell into its busiest moments, and the line's order would depend on the app's load (the
room benchmark on a slow host: the pre-queue's admission order failed its independence test).
A heartbeat only keeps a place the line already has (adapters/waiting_rooms*.py), so a refused
look, unauthenticated yet, can keep a place alive but never make one.

Joins have a line of their own as well, the same share: once per buyer, but a whole crowd's at
once when an on-sale opens (the room benchmark: 2,000 a second for 15 s, ~0.45 ms of CPU each),
and in the ordinary line they held all its places while the admitted buyers' holds waited on the
event loop behind them. A join refused is told the ordinary Retry-After: nothing was done for it.

The room's two lines are narrow (their `room_share`) only while admitted buyers come to hold
(one did in the last ADMITTED_HOLDS_LAST seconds, in this process); otherwise they are as wide
as the ordinary line. Before a sale opens nobody is admitted, and the narrow lines only refused
the pre-queue's own joins, whose buyers, retrying after the opening, joined behind the whole
pre-queue instead of in its shuffle (the room benchmark: 15,149-16,585 of 20,000 joined in
time with a share of 8 places; 9,348-10,175 with 2).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from uuid import UUID

from fastapi import FastAPI
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow.api.booking_hot_path import PATH as HOT_PATH
from ticketflow.api.errors import domain_problem
from ticketflow.api.routes.bookings import ADMISSION_HEADER
from ticketflow.config import Settings
from ticketflow.domain.errors import Overloaded

log = logging.getLogger(__name__)

API = "/api/v1/"
RETRY_AFTER_SECONDS = 1
ADMISSION = ADMISSION_HEADER.lower().encode()
LOOK_RETRY_AFTER_SECONDS = 5  # well within the minute a place may go unseen (module docstring)
# After an admitted buyer's hold, the room's lines stay narrow this long (seconds): admitted
# buyers come in a stream while their room admits, not one request at a time.
ADMITTED_HOLDS_LAST = 2.0


class WaitingLine:
    """At most `capacity` inside at once; the others wait in arrival order, each for at most
    `patience` seconds, those who come `first` ahead of the rest. A place given up is handed
    straight to the next one waiting, unless the line was narrowed (`capacity` lowered) below
    those inside."""

    def __init__(self, capacity: int, patience: float) -> None:
        self.capacity, self._patience = capacity, patience
        self._inside = 0
        self._first: deque[asyncio.Future[None]] = deque()
        self._rest: deque[asyncio.Future[None]] = deque()

    @property
    def inside(self) -> int:
        return self._inside

    @property
    def first_waiting(self) -> bool:
        """Whether someone who comes first is waiting for a place."""
        return bool(self._first)

    async def enter(self, first: bool = False) -> bool:
        """True once inside (call `leave()` after); False if the patience ran out first."""
        if self._inside < self.capacity and not self._first and not self._rest:
            self._inside += 1
            return True
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._first if first else self._rest
        waiting.append(turn)
        try:
            async with asyncio.timeout(self._patience):
                await turn
            return True
        except TimeoutError:
            # Handed a place just as the patience ran out: it is ours, so take it.
            return turn.done() and not turn.cancelled()
        finally:
            if not turn.done():
                turn.cancel()
            if turn in waiting:
                waiting.remove(turn)

    def leave(self) -> None:
        if self._inside > self.capacity:  # narrowed meanwhile: this place closes
            self._inside -= 1
            return
        for waiting in (self._first, self._rest):
            while waiting:
                turn = waiting.popleft()
                if not turn.done():
                    turn.set_result(None)  # the place goes on: `inside` is unchanged
                    return
        self._inside -= 1


PROVIDER_CALLBACKS = "/api/v1/payments/webhook"
LOOK = re.compile(r"/api/v1/events/([^/]+)/queue/([^/]+)")
JOIN = re.compile(r"/api/v1/events/[^/]+/queue")
PAYMENT = re.compile(r"/api/v1/bookings/[^/]+/payments")
TICKETS = re.compile(r"/api/v1/bookings/[^/]+/tickets")
CATALOG = re.compile(r"/api/v1/events(/[^/]+)?")
# Told of each look refused here: the room's event id and the place's ticket id.
RefusedLook = Callable[[Scope, UUID, UUID], None]


class Line(StrEnum):
    ORDINARY = "ordinary"
    CHECKOUT = "checkout"  # paying for a hold, and seeing its tickets: first in the ordinary line
    ROOM = "room"  # a look at a waiting place
    JOIN = "join"  # joining a waiting room
    HOLD = "hold"  # the booking hot path: never waits, refused while a checkout waits
    BROWSE = "browse"  # the catalog's reads: the list and an event


def line_of(scope: Scope) -> Line | None:
    """Which line a request waits in, if any (module docstring: who does not)."""
    path: str = scope["path"]
    if not path.startswith(API) or path.endswith(("/live", "/stream")):
        return None
    method = scope["method"]
    if path == HOT_PATH and method == "POST":
        return Line.HOLD
    if path == PROVIDER_CALLBACKS:
        return None
    if method == "GET" and LOOK.fullmatch(path):
        return Line.ROOM
    if method == "POST" and JOIN.fullmatch(path):
        return Line.JOIN
    if method == "GET" and CATALOG.fullmatch(path):
        return Line.BROWSE
    if (method == "POST" and PAYMENT.fullmatch(path)) or (
        method == "GET" and TICKETS.fullmatch(path)
    ):
        return Line.CHECKOUT
    return Line.ORDINARY


class LoadSheddingMiddleware:
    """The line, and the one answer to overload wherever it shows: a database pool with no
    connection free in time is a 503 too, whether a route, the booking hot path or another
    middleware was waiting for it (a route's error handlers see only the routes' share)."""

    def __init__(
        self,
        app: ASGIApp,
        capacity: int,
        patience: float,
        room_share: float,
        refused_look: RefusedLook,
    ) -> None:
        self.app, self._refused_look = app, refused_look
        ordinary = WaitingLine(capacity, patience)
        self.lines = {
            Line.ORDINARY: ordinary,
            Line.CHECKOUT: ordinary,
            Line.BROWSE: WaitingLine(capacity, patience),
            Line.ROOM: WaitingLine(capacity, patience),
            Line.JOIN: WaitingLine(capacity, patience),
        }
        self._room_wide, self._room_narrow = capacity, max(1, int(capacity * room_share))
        self._admitted_at = -ADMITTED_HOLDS_LAST  # when an admitted buyer last came to hold

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = line_of(scope)
        if kind is Line.HOLD:
            admitted = _admitted(scope)
            if admitted:
                self._admitted_at = time.monotonic()
            if self.lines[Line.CHECKOUT].first_waiting and not admitted:
                await _overloaded(scope, receive, send, "buyers paying for their holds go first")
            else:
                await self._app(scope, receive, send, None)
            return
        if kind is Line.ROOM or kind is Line.JOIN:
            self._size_room_line(self.lines[kind])
        line = self.lines[kind] if kind else None
        if line is not None and not await line.enter(first=kind is Line.CHECKOUT):
            if kind is Line.ROOM:
                self._still_there(scope)
                await _overloaded(
                    scope, receive, send, "your place was kept", LOOK_RETRY_AFTER_SECONDS
                )
                return
            await _overloaded(scope, receive, send, "nothing was done for this request")
            return
        await self._app(scope, receive, send, line)

    async def _app(
        self, scope: Scope, receive: Receive, send: Send, line: WaitingLine | None
    ) -> None:
        """The request, inside `line` (left when it is done); a pool timeout answered 503."""
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except PoolTimeout:
            if started:
                raise
            log.warning("database pool exhausted on %s %s", scope["method"], scope["path"])
            await _overloaded(scope, receive, send, "the database is busy")
        finally:
            if line is not None:
                line.leave()

    def _size_room_line(self, line: WaitingLine) -> None:
        """The room's lines are as wide as the ordinary one, and narrow to their `room_share`
        while admitted buyers come to hold (module docstring)."""
        holding = time.monotonic() - self._admitted_at < ADMITTED_HOLDS_LAST
        line.capacity = self._room_narrow if holding else self._room_wide

    def _still_there(self, scope: Scope) -> None:
        """A refused look's heartbeat (module docstring), if its path names a place."""
        found = LOOK.fullmatch(scope["path"])
        if found is None:
            return
        try:
            event_id, ticket_id = UUID(found[1]), UUID(found[2])
        except ValueError:
            return  # not a place: the route answers 404
        self._refused_look(scope, event_id, ticket_id)


def _admitted(scope: Scope) -> bool:
    """Whether the request brings an admission from a waiting room (checked by the route)."""
    return any(name == ADMISSION for name, _ in scope["headers"])


def heard_by_the_room(scope: Scope, event_id: UUID, ticket_id: UUID) -> None:
    """A refused look's heartbeat, heard by the app's waiting rooms like an answered one."""
    scope["app"].state.bus.deps.rooms.still_there(event_id, ticket_id)


async def _overloaded(
    scope: Scope, receive: Receive, send: Send, why: str, retry_after: int = RETRY_AFTER_SECONDS
) -> None:
    refusal = Overloaded(
        f"The service is busy ({why}). Retry after {retry_after} s, with the same "
        "Idempotency-Key if the request had one.",
        retry_after=retry_after,
    )
    await domain_problem(Request(scope), refusal)(scope, receive, send)


def install_load_shedding(app: FastAPI, settings: Settings) -> None:
    """Outermost of our middleware: it answers overload for all of them. Capacity 0: no line
    (every request passes at once), pool timeouts still answered 503."""
    app.add_middleware(
        LoadSheddingMiddleware,
        capacity=settings.shed_requests_in_progress or sys.maxsize,
        patience=settings.shed_wait_seconds,
        room_share=settings.shed_room_share,
        refused_look=heard_by_the_room,
    )
