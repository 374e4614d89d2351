"""Idempotency-Key on mutating POSTs (Stripe-style): a repeat gets the first answer, replayed.

A pure ASGI middleware, so it sees the raw body (for the fingerprint) and the raw answer (to
store it byte for byte). The business transaction marks the key `committed` itself (see
UnitOfWork.commit), so a change and its key land together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketflow.adapters import idempotency_store as store
from ticketflow.adapters.idempotency_store import ClaimOutcome, KeyScope
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.api.booking_hot_path import PATH as HOT_PATH
from ticketflow.api.booking_hot_path import BookingHotPath
from ticketflow.api.caller import looks_signed_in, request_caller
from ticketflow.api.errors import problem
from ticketflow.domain.errors import DomainError
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus, current_idempotency_scope

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Payments and refunds move money: a retry without a key could charge twice, so it is required.
# They are also resumable: a retry after a crash finishes the work the first attempt started.
KEY_REQUIRED = re.compile(r"^/api/v1/bookings/[^/]+/(payments|refund)$")
# Where a key means nothing: credentials exchange and the provider's signed callbacks.
EXEMPT = re.compile(r"^/api/v1/(auth/|payments/webhook$)")
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: same JSON in another key order or spacing is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the route says so
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._claims: MicroBatcher[store.ClaimRequest, store.Claim] | None = None
        self._answers: MicroBatcher[store.Answer, None] | None = None
        self._hot: BookingHotPath | None = None

    def _batchers(
        self, bus: MessageBus
    ) -> tuple[MicroBatcher[store.ClaimRequest, store.Claim], MicroBatcher[store.Answer, None]]:
        """Claims and answers of concurrent requests are written in shared transactions: two
        commits per request would otherwise be most of a booking's cost (group commit)."""
        if self._claims is None or self._answers is None:
            ttl = timedelta(seconds=bus.deps.settings.idempotency_key_ttl_seconds)

            async def claim_batch(requests: list[store.ClaimRequest]) -> list[Any]:
                return await store.claim_many(bus.engine, requests, bus.deps.clock.now(), ttl)

            async def answer_batch(answers: list[store.Answer]) -> list[Any]:
                return await store.store_answers(bus.engine, answers)

            self._claims = MicroBatcher(claim_batch, max_batch=500)
            self._answers = MicroBatcher(answer_batch, max_batch=500)
        return self._claims, self._answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith("/api/v1/")
            or EXEMPT.match(path)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        bus: MessageBus = self.fastapi_app.state.bus
        if path == HOT_PATH and looks_signed_in(scope):
            # A burst's bookings wait their turn here before anything is done for them (token
            # checked, body read): those admitted reach their hold batch at once, not after
            # everybody's checks, and once admitted, a type sold out meanwhile refuses them for
            # (almost) nothing. Past this point a booking costs a place in a hold batch. One
            # without anything like a token takes no place: the route answers it 401 (and the
            # per-IP default limit counts it, api/rate_limit_guards.py).
            async with self._hot_path(bus).admission:
                await self._booking(request, receive, send)
            return
        key = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        caller = await self._caller(bus, request)
        actor = caller.user_id if caller else None
        await self._claimed(self.app, request, receive, send, key, actor)

    async def _booking(self, request: Request, receive: Receive, send: Send) -> None:
        """`POST /api/v1/bookings`: the hot path when it can (api/booking_hot_path.py)."""
        scope, path = request.scope, HOT_PATH
        bus: MessageBus = self.fastapi_app.state.bus
        key = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        caller = await self._caller(bus, request)
        actor = caller.user_id if caller else None
        if caller is not None and (not key or VALID_KEY.match(key)):
            body = await _read_body(receive)
            receive = _replaying(body)
            hot = self._hot_path(bus)
            command = hot.command(request, caller, body)
            if command is not None:
                key_scope = KeyScope(caller.user_id, key) if key else None
                refusal = await hot.sold_out(request, command, key_scope)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
                if key_scope is not None and hot.keeps_key_in_batch(command):
                    print_ = fingerprint("POST", path, body)
                    claim = store.ClaimRequest(key_scope, "POST", path, print_)
                    answer = await hot.held_with_key(request, command, claim)
                    if answer is not None:
                        await answer(scope, receive, send)
                        return
                    hold = hot.hold(command, limit_checked=True)
                else:
                    hold = hot.hold(command)
                await self._claimed(hold, request, receive, send, key, actor)
                return
        await self._claimed(self.app, request, receive, send, key, actor)

    async def _claimed(
        self,
        app: ASGIApp,
        request: Request,
        receive: Receive,
        send: Send,
        key: str,
        actor: UUID | None,
    ) -> None:
        """Run `app` under the request's key: claimed first, its answer kept for replays."""
        scope, path = request.scope, request.scope["path"]
        bus: MessageBus = self.fastapi_app.state.bus
        if not key:
            if KEY_REQUIRED.match(path) and actor is not None:
                await problem(
                    request,
                    400,
                    "idempotency-key-required",
                    "Idempotency-Key required",
                    "Payments and refunds need an Idempotency-Key header (a UUID you "
                    "generate once per payment attempt and resend on retries).",
                )(scope, receive, send)
                return
            await app(scope, receive, send)
            return
        if actor is None:  # the route answers 401; there is nobody to scope the key to
            await app(scope, receive, send)
            return
        if not VALID_KEY.match(key):
            await problem(
                request,
                400,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                "Use 1 to 255 visible ASCII characters, e.g. a UUID.",
            )(scope, receive, send)
            return
        body = await _read_body(receive)
        key_scope = KeyScope(actor, key)
        claimed = await self._batchers(bus)[0].submit(
            store.ClaimRequest(key_scope, "POST", path, fingerprint("POST", path, body))
        )
        # Payments and refunds resume their own half-done work: run it again to finish it.
        if (
            claimed.outcome is ClaimOutcome.LOST_ANSWER
            and KEY_REQUIRED.match(path)
            and await store.retake(bus.engine, key_scope, bus.deps.clock.now())
        ):
            claimed = store.Claim(ClaimOutcome.PROCEED)
        if claimed.outcome is not ClaimOutcome.PROCEED:
            await _answer_claimed(request, claimed)(scope, receive, send)
            return
        await self._run(app, scope, body, send, bus, key_scope)

    def _hot_path(self, bus: MessageBus) -> BookingHotPath:
        if self._hot is None:
            self._hot = BookingHotPath(bus, self.fastapi_app.state.rate_limits)
        return self._hot

    @staticmethod
    async def _caller(bus: MessageBus, request: Request) -> Actor | None:
        try:
            return await request_caller(bus, request.scope)
        except DomainError:
            return None  # the route answers 401

    async def _run(
        self,
        app: ASGIApp,
        scope: Scope,
        body: bytes,
        send: Send,
        bus: MessageBus,
        key_scope: KeyScope,
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        token = current_idempotency_scope.set(key_scope)
        try:
            await app(scope, _replaying(body), capture)
        except BaseException:
            await store.release(bus.engine, key_scope, bus.deps.clock.now())
            raise
        finally:
            current_idempotency_scope.reset(token)
        status = int(start.get("status", 500))
        answer = b"".join(chunks)
        headers = dict(start.get("headers", []))
        if status >= 500:
            await store.release(bus.engine, key_scope, bus.deps.clock.now())
            await send(start)
            await send({"type": "http.response.body", "body": answer})
            return
        # The caller hears first, the answer is kept for replays right after: a commit less
        # between a buyer and their hold. Until it is kept, a retry is told "in flight, retry";
        # if keeping it fails, the key says what was done (see _answer_claimed).
        await send(start)
        await send({"type": "http.response.body", "body": answer})
        content_type = headers.get(b"content-type", b"").decode()
        try:
            await self._batchers(bus)[1].submit(
                store.Answer(key_scope, status, answer.decode(), content_type)
            )
        except Exception:
            log.exception("idempotency: could not keep the answer for key %s", key_scope.key)


def _replaying(body: bytes) -> Receive:
    """A `receive` that hands the app a body read already."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _answer_claimed(request: Request, claimed: store.Claim) -> ASGIApp:
    if claimed.outcome is ClaimOutcome.REPLAY:
        return Response(
            claimed.body,
            status_code=claimed.status or 200,
            media_type=claimed.content_type or None,
            headers={REPLAYED_HEADER: "true"},
        )
    if claimed.outcome is ClaimOutcome.MISMATCH:
        return problem(
            request,
            422,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "This key was already used for a different request; use a new key.",
            [{"field": "Idempotency-Key", "message": "used for another request"}],
        )
    if claimed.outcome is ClaimOutcome.IN_FLIGHT:
        return problem(
            request,
            409,
            "request-in-flight",
            "Request still in progress",
            "The first request with this key is still running; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return problem(
        request,
        409,
        "answer-lost",
        "Answer lost",
        f"The first request with this key completed ({claimed.resource_type} "
        f"{claimed.resource_id}) but its answer was lost; read that resource instead.",
    )
