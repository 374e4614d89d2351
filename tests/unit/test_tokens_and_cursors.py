"""Tokens refuse tampering, expiry, wrong type and `alg: none`; cursors refuse garbage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.security import RefreshClaims, SigningKeys, Tokens
from ticketflow.config import Settings
from ticketflow.domain.errors import AuthenticationFailed, InvalidInput
from ticketflow.domain.model import Role
from ticketflow.services.pagination import decode_cursor, encode_cursor

KEY = "s" * 32
ISSUER, AUDIENCE = "ticketflow", "ticketflow-api"


def _tokens(keys: dict[str, str], active_kid: str, clock: ManualClock | None = None) -> Tokens:
    return Tokens(
        SigningKeys(keys, active_kid),
        timedelta(minutes=15),
        timedelta(days=7),
        clock,
        issuer=ISSUER,
        audience=AUDIENCE,
    )


TOKENS = _tokens({"k1": KEY}, "k1")


def _access(tokens: Tokens = TOKENS, role: Role = Role.USER) -> str:
    return tokens.access_token(uuid.uuid4(), role, uuid.uuid4(), datetime.now(UTC))


def test_access_token_round_trip() -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token = TOKENS.access_token(user_id, Role.MANAGER, session_id, datetime.now(UTC))
    claims = TOKENS.access_claims(token)
    assert (claims.user_id, claims.role, claims.session_id) == (user_id, Role.MANAGER, session_id)
    assert claims.actor.user_id == user_id
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k1", "typ": "JWT"}


def test_expired_access_token_is_refused() -> None:
    token = TOKENS.access_token(
        uuid.uuid4(), Role.USER, uuid.uuid4(), datetime.now(UTC) - timedelta(hours=1)
    )
    with pytest.raises(AuthenticationFailed, match="expired"):
        TOKENS.access_claims(token)


def test_a_token_verified_before_still_expires_on_time() -> None:
    """Verified tokens are remembered (no second signature check), their expiry is not."""
    clock = ManualClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    tokens = _tokens({"k1": KEY}, "k1", clock)
    token = tokens.access_token(uuid.uuid4(), Role.USER, uuid.uuid4(), clock.now())
    first = tokens.access_claims(token)
    clock.advance(15 * 60 - 1)
    assert tokens.access_claims(token) == first
    clock.advance(1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        tokens.access_claims(token)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(AuthenticationFailed):
        tokens.access_claims(tampered)  # a look-alike is checked, not recognized


def test_refresh_token_is_not_an_access_token() -> None:
    claims = RefreshClaims(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    token = TOKENS.refresh_token(claims, datetime.now(UTC))
    with pytest.raises(AuthenticationFailed):
        TOKENS.access_claims(token)
    assert TOKENS.refresh_claims(token) == claims


MISSING = object()  # a claim left out of a forged token


def _forged(payload: dict[str, object], key: str | None, **options: object) -> str:
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "sid": str(uuid.uuid4()),
        "typ": "access",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        **payload,
    }
    present = {name: value for name, value in claims.items() if value is not MISSING}
    return jwt.encode(present, key, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        _forged({}, "another-secret-entirely-and-long-enough!", headers={"kid": "k1"}),
        _forged({}, None, algorithm="none", headers={"kid": "k1"}),
        _forged({}, KEY),  # no kid: no key of ours vouches for it
        _forged({}, KEY, headers={"kid": "k2"}),
        _forged({"sid": None}, KEY, headers={"kid": "k1"}),  # not revocable: refused
        _forged({"sid": "not-a-uuid"}, KEY, headers={"kid": "k1"}),
        _forged({"role": "superuser"}, KEY, headers={"kid": "k1"}),
        # Signed with our key, but not by us for us: another service sharing it, or a deployment
        # of ours with another issuer or audience.
        _forged({"iss": MISSING}, KEY, headers={"kid": "k1"}),
        _forged({"iss": "another-service"}, KEY, headers={"kid": "k1"}),
        _forged({"aud": MISSING}, KEY, headers={"kid": "k1"}),
        _forged({"aud": "another-api"}, KEY, headers={"kid": "k1"}),
        _forged({"aud": ["another-api"]}, KEY, headers={"kid": "k1"}),
        "not.a.jwt",
    ],
)
def test_forged_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        TOKENS.access_claims(token)


def test_tokens_name_their_issuer_and_audience() -> None:
    claims = jwt.decode(_access(), options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    other_audience = Tokens(
        SigningKeys({"k1": KEY}, "k1"),
        timedelta(minutes=15),
        timedelta(days=7),
        issuer=ISSUER,
        audience="another-api",
    )
    with pytest.raises(AuthenticationFailed, match="invalid"):
        other_audience.access_claims(_access())
    refresh = TOKENS.refresh_token(
        RefreshClaims(*(uuid.uuid4() for _ in range(3))), datetime.now(UTC)
    )
    with pytest.raises(AuthenticationFailed, match="invalid"):
        other_audience.refresh_claims(refresh)


def test_a_token_verifies_while_its_kid_is_configured_and_not_after() -> None:
    old = _access(_tokens({"k1": KEY}, "k1"))
    rotated = _tokens({"k1": KEY, "k2": "t" * 32}, "k2")
    assert rotated.access_claims(old).role is Role.USER
    fresh = _access(rotated)
    assert jwt.get_unverified_header(fresh)["kid"] == "k2"
    retired = _tokens({"k2": "t" * 32}, "k2")
    assert retired.access_claims(fresh).role is Role.USER
    with pytest.raises(AuthenticationFailed, match="unknown key"):
        retired.access_claims(old)


def test_a_header_written_otherwise_still_names_its_key() -> None:
    """Our own tokens' key is found by their exact header bytes; any other header is read."""
    ours = _access()
    theirs = _forged({"role": "user"}, KEY, headers={"kid": "k1", "cty": "example"})
    assert ours.partition(".")[0] != theirs.partition(".")[0]
    assert TOKENS.access_claims(theirs).role is Role.USER
    assert TOKENS.access_claims(ours).role is Role.USER


def test_the_same_kid_with_another_secret_does_not_verify() -> None:
    with pytest.raises(AuthenticationFailed, match="invalid"):
        _tokens({"k1": "u" * 32}, "k1").access_claims(_access())


@pytest.mark.parametrize(
    ("keys", "active"), [({}, "k1"), ({"k1": KEY}, "k2"), ({"k1": ""}, "k1"), ({"k1": KEY}, "")]
)
def test_signing_keys_refuse_an_inconsistent_configuration(
    keys: dict[str, str], active: str
) -> None:
    with pytest.raises(ValueError, match="JWT"):
        SigningKeys(keys, active)


def test_signing_keys_from_settings_default_to_the_single_secret() -> None:
    keys = SigningKeys.from_settings(Settings(jwt_secret="x" * 40))
    assert (keys.active_kid, keys.active_secret) == ("default", "x" * 40)
    rotated = SigningKeys.from_settings(
        Settings(jwt_secret="x" * 40, jwt_keys={"a": "y" * 40, "b": "z" * 40}, jwt_active_kid="b")
    )
    assert (rotated.active_kid, rotated.active_secret, rotated.secret("a")) == (
        "b",
        "z" * 40,
        "y" * 40,
    )


def test_cursor_round_trip() -> None:
    key = (datetime(2026, 1, 2, tzinfo=UTC), uuid.uuid4())
    assert decode_cursor(encode_cursor(key), datetime, uuid.UUID) == key


@pytest.mark.parametrize("cursor", ["", "%%%", encode_cursor(["x"]), encode_cursor([1, 2, 3])])
def test_foreign_cursor_is_a_422(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, datetime, uuid.UUID)
