"""The booking hot path: `POST /api/v1/bookings` from an authenticated caller with a valid body,
handled by the idempotency layer itself instead of by the framework's router.

In a flash sale this one request is nearly all the traffic, and resolving the route and its
dependencies cost more CPU than holding the tickets. Anything else about the request (no or a
bad token, a body that does not validate) goes the normal way, so the route, its documentation
and its error answers stay the one definition; this path runs the same command and gives the
same answers (tests/integration/test_booking_hot_path.py compares them).

Sold out: a booking that `hold_tickets` would refuse at once because its ticket type is marked
sold out (services/bookings.py `sold_out_refusal`) is refused before the idempotency key is
claimed. The refusal changed nothing, so it is not stored and the key stays unused: a retry is
judged afresh. A key that WAS used (the retry of a request that may have succeeded) never takes
this shortcut: it is claimed and gets its first answer replayed. Asking costs one read, shared
by the concurrent requests.

Keys claimed by the hold: a booking with an Idempotency-Key on the batched engine hands its key,
unclaimed, to its hold batch, which claims it in the hold's own transaction together with the
answer (services/hold_batcher.py). One transaction per batch, where claim, hold and kept answer
took three. Only a key so kept answers from here; otherwise (the key was used before, or the
hold was refused before its batch, or rate limited) the request goes the usual way, claim first.

Admission: a burst's bookings all arrive before anything is sold, so checked on arrival none of
them would meet a sold-out mark, and every loser would pay a claim, a place in a hold batch and
a stored answer. At most `booking_admission_window` bookings per process are let in at once;
the others wait their turn (in arrival order) and are checked when it comes. They wait before
anything is done for them, their token not checked yet either: the ones let in reach their hold
batch at once instead of after everybody's checks (api/idempotency.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.telemetry._api import _route_selected
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketflow.adapters import idempotency_store as store
from ticketflow.adapters.idempotency_store import KeyScope
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.api.errors import domain_problem
from ticketflow.api.rate_limits import RateLimits
from ticketflow.api.schemas import BookingIn, BookingOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError, NotEnoughTickets, TooManyRequests
from ticketflow.domain.model import Actor, Booking
from ticketflow.services.bookings import is_batched, sold_out_refusal
from ticketflow.services.hold_batcher import Answer, KeyClaim, KeyInUse
from ticketflow.services.messagebus import MessageBus, current_key_claim

PATH = "/api/v1/bookings"


class BookingHotPath:
    def __init__(self, bus: MessageBus, limits: RateLimits) -> None:
        self._bus, self._limits = bus, limits
        # A flash sale's burst arrives at once, all of it before anything sold; let through
        # at once only what the next batches can take, so the rest is checked against the
        # sold-out mark when its turn comes, not on arrival.
        self.admission = asyncio.Semaphore(bus.deps.settings.booking_admission_window)

        async def unused(scopes: list[KeyScope]) -> list[Any]:
            return await store.unused(bus.engine, scopes, bus.deps.clock.now())

        self._unused_keys = MicroBatcher(unused, max_batch=1000)
        self._refusals: dict[str, _Fixed] = {}

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
        )

    async def sold_out(
        self, request: Request, command: cmd.HoldTickets, key: KeyScope | None
    ) -> ASGIApp | None:
        """The answer for a hold refused as sold out, before its key is claimed; None to go on."""
        refused = await sold_out_refusal(command, self._bus.deps)
        if refused is None or (key is not None and not await self._unused_keys.submit(key)):
            return None
        _as_routed(request.scope)
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

    def keeps_key_in_batch(self, command: cmd.HoldTickets) -> bool:
        """Whether `command`'s hold goes to a batch, which can claim its key itself."""
        return is_batched(command, self._bus.deps.settings)

    async def held_with_key(
        self, request: Request, command: cmd.HoldTickets, claim: store.ClaimRequest
    ) -> ASGIApp | None:
        """The answer to `command` if its batch kept it with the key (or the booking limit
        refused it: not kept, a retry is judged afresh); None to go the usual way."""
        _as_routed(request.scope)
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

        key_claim = KeyClaim(claim, answer_for)
        token = current_key_claim.set(key_claim)
        try:
            await self._bus.handle(command)
        except (DomainError, KeyInUse):
            kept = key_claim.kept  # kept if its batch refused it; not if refused before it
        else:
            kept = key_claim.kept
            if kept is None:  # held without its key: going the usual way would hold again
                raise RuntimeError("a hold committed without keeping its key")
        finally:
            current_key_claim.reset(token)
        if kept is None:
            return None
        return Response(kept.body, kept.status, media_type=kept.content_type)

    def hold(self, command: cmd.HoldTickets, *, limit_checked: bool = False) -> ASGIApp:
        """The route's work for `command`, as an ASGI app (run under the key's claim)."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            _as_routed(scope)
            try:
                if not limit_checked:
                    await self._limits.check_booking(command.actor.user_id)
                booking = await self._bus.handle(command)
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


def _as_routed(scope: Scope) -> None:
    """Tell FastAPI's tracing (when on) which route answered, as its router would have."""
    _route_selected(scope=scope, path=PATH)
