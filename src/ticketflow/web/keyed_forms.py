"""A form whose change must happen once however often it is sent (a double click, a reload of
the answer): run under an Idempotency-Key made from a nonce the form carries, through the same
`KeyedRequests` the API's keyed requests run under. A repeat gets the first outcome."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from ticketflow.api.idempotency import KeyedRequests, claimed_key, replaying
from ticketflow.domain.errors import DomainError
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus

# The key store's answers (api/idempotency.py) are worded for API clients; a buyer reads these.
KEY_PROBLEMS = {
    "request-in-flight": "This form is being sent already: wait a moment, then reload.",
    "idempotency-key-reused": "This form was sent before with other choices: reload the page.",
    "answer-lost": "This form was sent before: see your bookings.",
}


@dataclass(frozen=True)
class Refused:
    """A refusal as pages show it: DomainError's shape, also when replayed from the key."""

    status: int
    detail: str
    field: str | None = None


async def run_once(
    request: Request,
    actor: Actor,
    key: str,
    request_body: bytes,
    change: Callable[[MessageBus], Awaitable[str]],
) -> str | Refused:
    """`change` (given the bus that spends the key) run once per `key` and `request_body`: the
    id it returns, or the refusal; a repeat gets the first outcome. The same key sent with
    another body is refused, as a key in flight is (its first request still running)."""
    keyed: KeyedRequests = request.app.state.keyed_requests

    async def make_change(scope: Scope, receive: Receive, send: Send) -> None:
        bus: MessageBus = request.app.state.bus
        answer: Response
        try:
            answer = PlainTextResponse(await change(bus.for_request(claimed_key(scope))), 201)
        except DomainError as refusal:
            body = {"detail": refusal.detail, "field": refusal.field}
            answer = JSONResponse(body, refusal.status)
        await answer(scope, receive, send)

    start: Message = {}
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        else:
            chunks.append(message.get("body", b""))

    await keyed.run(make_change, request, replaying(request_body), capture, key, actor.user_id)
    status, body = int(start.get("status", 500)), b"".join(chunks)
    if status == 201:
        return body.decode()
    if status >= 500:
        raise RuntimeError(f"keyed form change failed with {status}")
    said = json.loads(body)  # ours, or the key store's problem+json (in flight, reused)
    key_problem = KEY_PROBLEMS.get(str(said.get("type", "")).rpartition(":")[2])
    return Refused(status, key_problem or str(said.get("detail", "")), said.get("field"))
