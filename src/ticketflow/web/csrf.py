"""CSRF tokens: every form and htmx request that changes something carries one, signed with
our key over the browser's login session (its id), or, before signing in, over a random cookie
of the browser's own.

Another site can make the browser send our cookies, but can read neither, nor forge the
signature over them, so it cannot send the matching token. A token taken from a page before
signing in or out stops working after. Signed-in pages set no cookie of their own for it, so
concurrent answers (a page and its htmx fragments) never race to set different ones.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from starlette.requests import Request

from ticketflow.adapters.security import SigningKeys
from ticketflow.web.cookies import set_cookie

COOKIE = "tf_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
_STATE = "ticketflow.csrf_cookie"


def browser_secret(request: Request) -> str:
    """This browser's random CSRF cookie value, made (and set on the answer) if it has none."""
    state = request.scope.setdefault("state", {})
    if _STATE not in state:
        state[_STATE] = request.cookies.get(COOKIE)
        if state[_STATE] is None:
            state[_STATE] = secrets.token_urlsafe(24)
            set_cookie(request, COOKIE, state[_STATE], max_age=None)
    secret: str = state[_STATE]
    return secret


def _keys(request: Request) -> SigningKeys:
    keys: SigningKeys = request.app.state.page_keys  # the JWT keys (web/__init__.py)
    return keys


def _message(request: Request, session_id: UUID | None) -> bytes:
    if session_id is not None:
        return f"csrf|session|{session_id}".encode()
    return f"csrf|browser|{browser_secret(request)}".encode()


def token_for(request: Request, session_id: UUID | None) -> str:
    """The token pages of this session (or of this browser, signed out) put in their forms."""
    return _keys(request).mac(_message(request, session_id))


def token_is_valid(request: Request, session_id: UUID | None, presented: str) -> bool:
    if not presented or (session_id is None and COOKIE not in request.cookies):
        return False
    return _keys(request).verifies(_message(request, session_id), presented)
