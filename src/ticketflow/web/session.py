"""Browser sessions: the cookie holds the token pair of a login session, the same sessions the
API's bearer tokens belong to, so logging out (here, through the API, or everywhere) ends them.

The access token is checked as the API checks it (revocation included); once it has expired, the
refresh token is traded for a new pair on the way (once: web/session_renewals.py), and the
cookie is rewritten with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from ticketflow.domain.errors import AuthenticationFailed, PermissionDenied
from ticketflow.domain.model import Actor, Role
from ticketflow.request_context import note_caller
from ticketflow.services.accounts import TokenPair, authenticate
from ticketflow.services.messagebus import MessageBus
from ticketflow.web.cookies import clear_cookie, set_cookie
from ticketflow.web.session_renewals import SessionRenewals

COOKIE = "tf_session"
SEPARATOR = "~"  # not in base64url nor in a JWT's dots
_STATE = "ticketflow.web_session"


@dataclass(frozen=True)
class WebSession:
    actor: Actor
    session_id: UUID
    refresh_token: str


class SignInRequired(AuthenticationFailed):
    """A page for signed-in users only, asked without a session: the pages send the browser to
    sign in (web/pages.py), then back."""


def start_session(request: Request, pair: TokenPair) -> None:
    """Sign the browser in with a login session's token pair (LogIn's answer)."""
    bus: MessageBus = request.app.state.bus
    set_cookie(
        request,
        COOKIE,
        f"{pair.access_token}{SEPARATOR}{pair.refresh_token}",
        max_age=int(bus.deps.tokens.refresh_ttl.total_seconds()),
    )


def end_session(request: Request) -> None:
    clear_cookie(request, COOKIE)
    request.scope.setdefault("state", {})[_STATE] = None


async def current_session(request: Request) -> WebSession | None:
    """The browser's login session, None if it has none (any more); once per request."""
    state = request.scope.setdefault("state", {})
    if _STATE not in state:
        state[_STATE] = await _session_of(request)
        if state[_STATE] is not None:  # for the request's log line
            note_caller(state[_STATE].actor.user_id)
    found: WebSession | None = state[_STATE]
    return found


async def _session_of(request: Request) -> WebSession | None:
    access, _, refresh = request.cookies.get(COOKIE, "").partition(SEPARATOR)
    if not access or not refresh:
        return None
    bus: MessageBus = request.app.state.bus
    try:
        actor = await authenticate(bus.deps, access)
        return WebSession(actor, bus.deps.tokens.access_claims(access).session_id, refresh)
    except AuthenticationFailed:
        pass  # expired (or ended: then the refresh below fails too)
    renewals: SessionRenewals = request.app.state.session_renewals
    try:
        pair = await renewals.renew(bus, refresh)
    except AuthenticationFailed:
        end_session(request)
        return None
    start_session(request, pair)
    claims = bus.deps.tokens.access_claims(pair.access_token)
    return WebSession(claims.actor, claims.session_id, pair.refresh_token)


async def _actor_or_none(request: Request) -> Actor | None:
    found = await current_session(request)
    return found.actor if found else None


async def _signed_in(request: Request) -> WebSession:
    found = await current_session(request)
    if found is None:
        raise SignInRequired("Sign in to see this page.")
    return found


PageActor = Annotated[Actor | None, Depends(_actor_or_none)]
SignedIn = Annotated[WebSession, Depends(_signed_in)]


def require_role(*roles: Role) -> Callable[[Request], Awaitable[WebSession]]:
    """A dependency for pages of some roles only, e.g. `Depends(require_role(Role.ADMIN))`:
    without a session the browser is sent to sign in; with another role, 403."""

    async def signed_in_with_role(request: Request) -> WebSession:
        found = await _signed_in(request)
        if found.actor.role not in roles:
            raise PermissionDenied("Your account may not see this page.")
        return found

    return signed_in_with_role
