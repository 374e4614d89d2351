"""Who is calling: a request's bearer token, authenticated once per request.

The idempotency layer needs the caller (keys are scoped per user) before the route runs, and the
route's dependencies need it again; the answer, or the authentication failure, is kept in the
request's scope so the token is checked (and its session looked up) only once.
"""

from __future__ import annotations

from starlette.types import Scope

from ticketflow.domain.errors import AuthenticationFailed
from ticketflow.domain.model import Actor
from ticketflow.request_context import note_caller
from ticketflow.services.accounts import authenticate
from ticketflow.services.messagebus import MessageBus

_STATE_KEY = "ticketflow.caller"
MAX_TOKEN_LENGTH = 4096  # ours are a few hundred characters


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


def looks_signed_in(scope: Scope) -> bool:
    """Whether the request carries something shaped like one of our tokens (three base64url
    parts): what can be told without checking it, before a request takes a place it would only
    waste (the booking hot path's admission, a limit counted per user)."""
    token = bearer_token(scope)
    return token is not None and token.count(".") == 2 and len(token) <= MAX_TOKEN_LENGTH


async def request_caller(bus: MessageBus, scope: Scope) -> Actor | None:
    """The actor the request's bearer token speaks for, None without one; a bad token raises
    AuthenticationFailed (each time it is asked)."""
    state = scope.setdefault("state", {})
    if _STATE_KEY not in state:
        token = bearer_token(scope)
        try:
            state[_STATE_KEY] = await authenticate(bus.deps, token) if token else None
        except AuthenticationFailed as failure:
            state[_STATE_KEY] = failure
        if isinstance(state[_STATE_KEY], Actor):  # for the request's log line
            note_caller(state[_STATE_KEY].user_id)
    outcome: Actor | AuthenticationFailed | None = state[_STATE_KEY]
    if isinstance(outcome, AuthenticationFailed):
        raise AuthenticationFailed(str(outcome))
    return outcome
