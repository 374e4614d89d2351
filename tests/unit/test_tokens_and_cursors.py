"""Tokens refuse tampering, expiry, wrong type and `alg: none`; cursors refuse garbage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from ticketflow.adapters.security import RefreshClaims, Tokens
from ticketflow.domain.errors import AuthenticationFailed, InvalidInput
from ticketflow.domain.model import Role
from ticketflow.services.pagination import decode_cursor, encode_cursor

TOKENS = Tokens("s" * 32, access_ttl=timedelta(minutes=15), refresh_ttl=timedelta(days=7))


def test_access_token_round_trip() -> None:
    user_id = uuid.uuid4()
    actor = TOKENS.actor(TOKENS.access_token(user_id, Role.MANAGER, datetime.now(UTC)))
    assert (actor.user_id, actor.role) == (user_id, Role.MANAGER)


def test_expired_access_token_is_refused() -> None:
    token = TOKENS.access_token(uuid.uuid4(), Role.USER, datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        TOKENS.actor(token)


def test_refresh_token_is_not_an_access_token() -> None:
    claims = RefreshClaims(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    token = TOKENS.refresh_token(claims, datetime.now(UTC))
    with pytest.raises(AuthenticationFailed):
        TOKENS.actor(token)
    assert TOKENS.refresh_claims(token) == claims


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(
            {
                "sub": str(uuid.uuid4()),
                "role": "admin",
                "typ": "access",
                "exp": datetime.now(UTC) + timedelta(minutes=5),
            },
            "another-secret-entirely-and-long-enough!",
        ),
        jwt.encode(
            {
                "sub": str(uuid.uuid4()),
                "role": "admin",
                "typ": "access",
                "exp": datetime.now(UTC) + timedelta(minutes=5),
            },
            None,
            algorithm="none",
        ),
        "not.a.jwt",
    ],
)
def test_forged_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        TOKENS.actor(token)


def test_cursor_round_trip() -> None:
    key = (datetime(2026, 1, 2, tzinfo=UTC), uuid.uuid4())
    assert decode_cursor(encode_cursor(key), datetime, uuid.UUID) == key


@pytest.mark.parametrize("cursor", ["", "%%%", encode_cursor(["x"]), encode_cursor([1, 2, 3])])
def test_foreign_cursor_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, datetime, uuid.UUID)
