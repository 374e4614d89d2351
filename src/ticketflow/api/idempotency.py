"""Idempotency-Key on mutating POSTs (Stripe-style): a repeat gets the first answer, replayed.

The HTTP side of idempotency (the storage side is adapters/idempotency_store.py). A pure ASGI
middleware, so it sees the raw body (for the fingerprint) and the raw answer (to keep it byte
for byte). The key it claimed travels to the route's bus as an explicit value (`claimed_key`,
read by api/deps.py), and the business transaction marks it `committed` itself (see
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

from ticketflow.adapters.idempotency_store import (
    Answer,
    Claim,
    ClaimOutcome,
    IdempotencyKeys,
    KeyScope,
    KeyUse,
)
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.api.caller import request_caller
from ticketflow.api.errors import problem
from ticketflow.domain.errors import DomainError
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Payments and refunds move money: a retry without a key could charge twice, so it is required.
# They are also resumable: a retry after a crash finishes the work the first attempt started.
KEY_REQUIRED = re.compile(r"^/api/v1/bookings/[^/]+/(payments|refund)$")
# Where a key means nothing: credentials exchange and the provider's signed callbacks.
EXEMPT = re.compile(r"^/api/v1/(auth/|payments/webhook$)")
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
HOT_PATH = "/api/v1/bookings"  # served by api/booking_hot_path.py, keys and all


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: same JSON in another key order or spacing is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the route says so
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


# Where the claimed key of the request being run travels, from here to the route's bus
# (api/deps.py): an ASGI scope extension, the request's own dict, read back explicitly.
_SCOPE_KEY = "ticketflow.idempotency_key"


def claimed_key(scope: Scope) -> KeyScope | None:
    """The Idempotency-Key this request claimed (None: it sent none, or runs unclaimed)."""
    key: KeyScope | None = scope.get(_SCOPE_KEY)
    return key


def key_header(scope: Scope) -> str:
    """The request's Idempotency-Key header ('' without one)."""
    value: bytes = dict(scope["headers"]).get(HEADER, b"")
    return value.decode("latin-1")


class KeyedRequests:
    """Runs a request under its Idempotency-Key: the key claimed first (or the repeat answered
    from it), the answer kept for repeats after. Shared by the middleware and the booking hot
    path (api/booking_hot_path.py), which brings its own ways around it."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        ttl = timedelta(seconds=bus.deps.settings.idempotency_key_ttl_seconds)

        async def claim_batch(uses: list[KeyUse]) -> list[Any]:
            async with IdempotencyKeys.own_transaction(bus.engine, wait_for_disk=False) as keys:
                return list(await keys.claim_many(uses, bus.deps.clock.now(), ttl))

        async def answer_batch(answers: list[tuple[KeyScope, Answer]]) -> list[Any]:
            async with IdempotencyKeys.own_transaction(bus.engine, wait_for_disk=False) as keys:
                await keys.keep_answers(answers)
            return [None] * len(answers)

        # Claims and answers of concurrent requests are written in shared transactions: two
        # commits per request would otherwise be most of a booking's cost (group commit).
        self._claims = MicroBatcher(claim_batch, max_batch=500)
        self._answers = MicroBatcher(answer_batch, max_batch=500)

    async def run(
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
        body = await read_body(receive)
        key_scope = KeyScope(actor, key)
        claimed = await self._claims.submit(
            KeyUse(key_scope, "POST", path, fingerprint("POST", path, body))
        )
        # Payments and refunds resume their own half-done work: run it again to finish it.
        if (
            claimed.outcome is ClaimOutcome.LOST_ANSWER
            and KEY_REQUIRED.match(path)
            and await self._retake(key_scope)
        ):
            claimed = Claim(ClaimOutcome.PROCEED)
        if claimed.outcome is not ClaimOutcome.PROCEED:
            await _answer_claimed(request, claimed)(scope, receive, send)
            return
        await self._run_claimed(app, scope, body, send, key_scope)

    async def _retake(self, key: KeyScope) -> bool:
        async with IdempotencyKeys.own_transaction(self._bus.engine) as keys:
            return await keys.retake(key, self._bus.deps.clock.now())

    async def _release(self, key: KeyScope) -> None:
        async with IdempotencyKeys.own_transaction(self._bus.engine) as keys:
            await keys.release(key, self._bus.deps.clock.now())

    async def _run_claimed(
        self, app: ASGIApp, scope: Scope, body: bytes, send: Send, key: KeyScope
    ) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        scope[_SCOPE_KEY] = key  # for the route's bus: its commit spends the key
        try:
            await app(scope, replaying(body), capture)
        except BaseException:
            await self._release(key)
            raise
        finally:
            del scope[_SCOPE_KEY]
        status = int(start.get("status", 500))
        answer = b"".join(chunks)
        headers = dict(start.get("headers", []))
        if status >= 500:
            await self._release(key)
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
            await self._answers.submit((key, Answer(status, answer.decode(), content_type)))
        except Exception:
            log.exception("idempotency: could not keep the answer for key %s", key.key)


class IdempotencyMiddleware:
    """Every mutating POST under /api/v1 runs under its key (`KeyedRequests`), except the
    credential exchanges and the provider's callbacks (EXEMPT) and the booking hot path's
    requests, which run under their keys their own way (api/booking_hot_path.py)."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith("/api/v1/")
            or EXEMPT.match(path)
            or path == HOT_PATH
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = self.fastapi_app.state
        caller = await caller_or_none(state.bus, request)
        actor = caller.user_id if caller else None
        await state.keyed_requests.run(self.app, request, receive, send, key_header(scope), actor)


async def caller_or_none(bus: MessageBus, request: Request) -> Actor | None:
    """Who the request's token speaks for; None when it has none or a bad one (the route
    answers 401)."""
    try:
        return await request_caller(bus, request.scope)
    except DomainError:
        return None


def replaying(body: bytes) -> Receive:
    """A `receive` that hands the app a body read already."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _answer_claimed(request: Request, claimed: Claim) -> ASGIApp:
    if claimed.outcome is ClaimOutcome.REPLAY:
        assert claimed.answer is not None
        return Response(
            claimed.answer.body,
            status_code=claimed.answer.status,
            media_type=claimed.answer.content_type or None,
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
