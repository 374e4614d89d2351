"""Password hashing (argon2id, off the event loop) and signed JWT access/refresh tokens."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ticketflow.adapters.clock import Clock, SystemClock
from ticketflow.domain.errors import AuthenticationFailed
from ticketflow.domain.model import Actor, Role

ALGORITHM = "HS256"


class Passwords:
    """argon2id with the library's RFC 9106 defaults; hashing runs in a worker thread."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the e-mail is unknown, so both failures cost the same time.
        self._decoy = self._hasher.hash("decoy-password-for-unknown-accounts")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._decoy, password)
            except (VerificationError, InvalidHashError):
                return False

        matches = await asyncio.to_thread(check)
        return matches and password_hash is not None


@dataclass(frozen=True)
class RefreshClaims:
    user_id: UUID
    session_id: UUID
    token_id: UUID


class Tokens:
    """Encodes and checks our JWTs: the algorithm is pinned, expiry and type required.

    Expiry is judged by the injected clock, the one that stamped `iat`/`exp`, not by PyJWT's
    wall clock: otherwise a manual clock (tests, benchmarks) would mint tokens already expired.
    """

    def __init__(
        self,
        secret: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        clock: Clock | None = None,
    ) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock or SystemClock()

    def access_token(self, user_id: UUID, role: Role, now: datetime) -> str:
        return self._encode(
            {"sub": str(user_id), "role": role.value, "typ": "access"}, now, self.access_ttl
        )

    def refresh_token(self, claims: RefreshClaims, now: datetime) -> str:
        return self._encode(
            {
                "sub": str(claims.user_id),
                "sid": str(claims.session_id),
                "jti": str(claims.token_id),
                "typ": "refresh",
            },
            now,
            self.refresh_ttl,
        )

    def actor(self, token: str) -> Actor:
        claims = self._decode(token, "access")
        try:
            return Actor(user_id=UUID(claims["sub"]), role=Role(claims["role"]))
        except (KeyError, ValueError) as error:
            raise AuthenticationFailed("The access token is malformed.") from error

    def refresh_claims(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        try:
            return RefreshClaims(UUID(claims["sub"]), UUID(claims["sid"]), UUID(claims["jti"]))
        except (KeyError, ValueError) as error:
            raise AuthenticationFailed("The refresh token is malformed.") from error

    def _encode(self, claims: dict[str, Any], now: datetime, ttl: timedelta) -> str:
        return jwt.encode({**claims, "iat": now, "exp": now + ttl}, self._secret, ALGORITHM)

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(f"The {kind} token is invalid.") from error
        expires = claims["exp"]
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise AuthenticationFailed(f"The {kind} token is invalid.")
        if expires <= self._clock.now().timestamp():
            raise AuthenticationFailed(f"The {kind} token has expired.")
        if claims.get("typ") != kind:
            raise AuthenticationFailed(f"This is not an {kind} token.")
        return claims
