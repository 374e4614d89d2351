"""The booking hot path: `POST /api/v1/bookings`, registered in api/app.py ahead of the ordinary
route (api/routes/bookings.py), for the one request that is nearly all of a flash sale's traffic.

An authenticated caller with a valid body is served here, without the framework's dependency
resolution and validation (which cost more CPU than holding the tickets); anything else (no or
a bad token, a body that does not validate) is handed to the ordinary route, so the route, its
documentation and its error answers stay the one definition. This path runs the same command
and gives the same answers (tests/integration/test_booking_hot_path.py compares them). It runs
its requests under their Idempotency-Keys itself (api/idempotency.py KeyedRequests), with two
shortcuts:

Sold out: a booking that `hold_tickets` would refuse at once because its ticket type is marked
sold out (services/bookings.py `sold_out_refusal`) is refused before the idempotency key is
claimed. The refusal changed nothing, so it is not stored and the key stays unused: a retry is
judged afresh. A key that WAS used (the retry of a request that may have succeeded) never takes
this shortcut: it is claimed and gets its first answer replayed. Asking costs one read, shared
by the concurrent requests.

Keys claimed by the hold: a booking with an Idempotency-Key that is batched (`is_batched`) hands
its key, unclaimed, to its hold batch, which claims it in the hold's own transaction together
with the answer (services/hold_batcher.py). One transaction per batch, where claim, hold and
kept answer took three. Only a key so kept answers from here; otherwise (the key was used
before, or the hold was refused before its batch, or rate limited) the request goes the usual
way, claim first.

Admission: a burst's bookings all arrive before anything is sold, so checked on arrival none of
them would meet a sold-out mark, and every loser would pay a claim, a place in a hold batch and
a stored answer. At most `booking_admission_window` bookings per process are let in at once;
the others wait their turn (in arrival order) and are checked when it comes. They wait before
anything is done for them, their token not checked yet either: the ones let in reach their hold
batch at once instead of after everybody's checks. A request without anything like a token
takes no place: the ordinary route answers it 401 (and the per-IP default limit counts it,
api/rate_limit_guards.py).
"""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketflow.adapters.idempotency_store import Answer, IdempotencyKeys, KeyScope, KeyUse
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.api.caller import looks_signed_in
from ticketflow.api.errors import domain_problem
from ticketflow.api.idempotency import (
    HOT_PATH,
    VALID_KEY,
    KeyedRequests,
    caller_or_none,
    claimed_key,
    fingerprint,
    key_header,
    read_body,
    replaying,
)
from ticketflow.api.rate_limits import RateLimits
from ticketflow.api.routes.bookings import ADMISSION_HEADER
from ticketflow.api.schemas import BookingIn, BookingOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError, NotEnoughTickets, TooManyRequests
from ticketflow.domain.model import Actor, Booking
from ticketflow.services.bookings import is_batched, sold_out_refusal
from ticketflow.services.hold_batcher import KeyInUse
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.unit_of_work import KeyClaim

PATH = HOT_PATH


# Set on a request the hot path hands back: its route then matches nothing, and the router
# finds the ordinary one behind it.
_HANDED_ON = "ticketflow.booking_hot_path.handed_on"


class HotPathRoute(Route):
    """A hot path, registered by api/app.py ahead of the ordinary route it stands in for; by
    default `POST /api/v1/bookings`, served by the app's BookingHotPath (built in its lifespan,
    once the bus exists). What it hands on (`ordinary_route`) goes to the ordinary route."""

    def __init__(
        self, path: str = PATH, served: ASGIApp | None = None, method: str = "POST"
    ) -> None:
        super().__init__(path, served or _Served(), methods=[method], include_in_schema=False)
        self.methods = {method}  # not HEAD as well, which Starlette adds to a GET: FastAPI doesn't

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # Every other request meets these routes first: its method, checked before the path's
        # regex, turns it away cheaply (the ordinary routes answer a 405 as before).
        if scope.get(_HANDED_ON) or scope.get("method") not in (self.methods or ()):
            return Match.NONE, {}
        return super().matches(scope)


class _Served:
    """The route's ASGI app (an object, so Starlette passes it the raw request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot: BookingHotPath = scope["app"].state.hot_path
        await hot(scope, receive, send)


async def ordinary_route(scope: Scope, receive: Receive, send: Send) -> None:
    """Hand the request to the ordinary route (api/routes/), through the router."""
    scope[_HANDED_ON] = True
    await scope["app"].router(scope, receive, send)


class BookingHotPath:
    def __init__(self, bus: MessageBus, limits: RateLimits, keyed: KeyedRequests) -> None:
        self._bus, self._limits, self._keyed = bus, limits, keyed
        # A flash sale's burst arrives at once, all of it before anything sold; let through
        # at once only what the next batches can take, so the rest is checked against the
        # sold-out mark when its turn comes, not on arrival. anyio's semaphore, not asyncio's:
        # Python 3.11's release scans the waiters already woken but not yet run, so a batch
        # of n answers released at once cost O(n^2) (bench/README.md, issue 17).
        self.admission = anyio.Semaphore(
            bus.deps.settings.booking_admission_window, fast_acquire=True
        )

        async def unused(scopes: list[KeyScope]) -> list[Any]:
            async with bus.engine.connect() as connection:
                return list(await IdempotencyKeys(connection).unused(scopes, bus.deps.clock.now()))

        self._unused_keys = MicroBatcher(unused, max_batch=1000)
        self._refusals: dict[str, _Fixed] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if not looks_signed_in(scope):
            await self._keyed.run(ordinary_route, request, receive, send, key_header(scope), None)
            return
        async with self.admission:
            await self._booking(request, receive, send)

    async def _booking(self, request: Request, receive: Receive, send: Send) -> None:
        scope = request.scope
        key = key_header(scope)
        caller = await caller_or_none(self._bus, request)
        actor = caller.user_id if caller else None
        if caller is not None and (not key or VALID_KEY.match(key)):
            body = await read_body(receive)
            receive = replaying(body)
            command = self.command(request, caller, body)
            if command is not None:
                key_scope = KeyScope(caller.user_id, key) if key else None
                refusal = await self.sold_out(request, command, key_scope)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
                if key_scope is not None and is_batched(command, self._bus.deps.settings):
                    use = KeyUse(key_scope, "POST", PATH, fingerprint("POST", PATH, body))
                    answer = await self.held_with_key(request, command, use)
                    if answer is not None:
                        await answer(scope, receive, send)
                        return
                    hold = self.hold(command, limit_checked=True)
                else:
                    hold = self.hold(command)
                await self._keyed.run(hold, request, receive, send, key, actor)
                return
        await self._keyed.run(ordinary_route, request, receive, send, key, actor)

    @staticmethod
    def command(request: Request, actor: Actor, body: bytes) -> cmd.HoldTickets | None:
        """The hold the request asks for; None if the route should explain what is wrong."""
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:  # parsed and validated in one pass by pydantic-core
            wanted = BookingIn.model_validate_json(body)
        except ValidationError:
            return None
        return cmd.HoldTickets(
            actor=actor,
            event_id=wanted.event_id,
            lines=tuple((line.ticket_type_id, line.quantity) for line in wanted.lines),
            admission=request.headers.get(ADMISSION_HEADER),
        )

    async def sold_out(
        self, request: Request, command: cmd.HoldTickets, key: KeyScope | None
    ) -> ASGIApp | None:
        """The answer for a hold refused as sold out, before its key is claimed; None to go on."""
        refused = await sold_out_refusal(command, self._bus.deps)
        if refused is None or (key is not None and not await self._unused_keys.submit(key)):
            return None
        try:  # counted as the route counts it, only now that this path answers
            await self._limits.check_booking(command.actor.user_id)
        except TooManyRequests as limited:
            return domain_problem(request, limited)
        return self._rendered(request, refused)

    def _rendered(self, request: Request, refused: NotEnoughTickets) -> ASGIApp:
        """The refusal's answer, rendered once per ticket type and detail: in a flash sale it is
        the same few hundred bytes thousands of times a second."""
        answer = self._refusals.get(refused.detail)
        if answer is None:
            rendered = domain_problem(request, refused)
            answer = _Fixed(rendered.status_code, rendered.raw_headers, bytes(rendered.body))
            if len(self._refusals) >= 1_000:  # a bound: names of sold-out types are few
                self._refusals.clear()
            self._refusals[refused.detail] = answer
        return answer

    async def held_with_key(
        self, request: Request, command: cmd.HoldTickets, use: KeyUse
    ) -> ASGIApp | None:
        """The answer to `command` if its batch kept it with the key (or the booking limit
        refused it: not kept, a retry is judged afresh); None to go the usual way."""
        try:
            await self._limits.check_booking(command.actor.user_id)
        except TooManyRequests as limited:
            return domain_problem(request, limited)

        def answer_for(outcome: Booking | DomainError) -> Answer:
            if isinstance(outcome, Booking):
                held = BookingOut.of(outcome, updated_at=outcome.created_at)
                return Answer(201, held.model_dump_json(), "application/json")
            refused = domain_problem(request, outcome)
            media_type = refused.headers["content-type"]
            return Answer(refused.status_code, bytes(refused.body).decode(), media_type)

        key_claim = KeyClaim(use, answer_for)
        try:
            await self._bus.handle(command, key_claim=key_claim)
        except (DomainError, KeyInUse):
            kept = key_claim.kept  # kept if its batch refused it; not if refused before it
        else:
            kept = key_claim.kept
            if kept is None:  # held without its key: going the usual way would hold again
                raise RuntimeError("a hold committed without keeping its key")
        if kept is None:
            return None
        return Response(kept.body, kept.status, media_type=kept.content_type)

    def hold(self, command: cmd.HoldTickets, *, limit_checked: bool = False) -> ASGIApp:
        """The route's work for `command`, as an ASGI app (run under the key's claim)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                if not limit_checked:
                    await self._limits.check_booking(command.actor.user_id)
                booking = await self._bus.for_request(claimed_key(scope)).handle(command)
            except DomainError as refused:
                answer: Response = domain_problem(Request(scope), refused)
            else:
                held = BookingOut.of(booking, updated_at=booking.created_at)
                answer = Response(held.model_dump_json(), 201, media_type="application/json")
            await answer(scope, receive, send)

        return app


class _Fixed:
    """An answer that never changes, sent as it was rendered."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._status, self._headers, self._body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self._status}
        await send({**start, "headers": list(self._headers)})  # a copy: later layers add to it
        await send({"type": "http.response.body", "body": self._body})
