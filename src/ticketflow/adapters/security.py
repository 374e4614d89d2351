"""Password hashing (argon2id, off the event loop), signed JWT access/refresh tokens, and the
MACs of password reset tokens."""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ticketflow.adapters.clock import Clock, SystemClock
from ticketflow.adapters.secret_file import kept_secret
from ticketflow.config import DEMO_JWT_SECRET, Settings
from ticketflow.domain.errors import AuthenticationFailed, Overloaded
from ticketflow.domain.model import Actor, Role

ALGORITHM = "HS256"
# What a password reset MAC is of, before the reset id: never what a JWT signs (base64url JSON).
PASSWORD_RESET = b"ticketflow password reset:"


class Passwords:
    """argon2id with the library's RFC 9106 defaults; hashing runs in a worker thread.

    At most `concurrency` hashes (or verifications) run at once per process: each takes ~100 ms
    of CPU and 64 MiB, so a sign-up rush left unbounded would take every core and the memory
    with it. The others wait their turn up to `patience` seconds, then are answered 503 +
    Retry-After (never a 500: a rush of sign-ups before an on-sale is normal traffic)."""

    def __init__(
        self, hasher: PasswordHasher | None = None, concurrency: int = 2, patience: float = 5.0
    ) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the e-mail is unknown, so both failures cost the same time.
        self._decoy = self._hasher.hash("decoy-password-for-unknown-accounts")
        self._concurrency, self._patience = concurrency, patience
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def hash(self, password: str) -> str:
        async with self._turn():
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._decoy, password)
            except (VerificationError, InvalidHashError):
                return False

        async with self._turn():
            matches = await asyncio.to_thread(check)
        return matches and password_hash is not None

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:  # one line per event loop
            self._slots, self._loop = asyncio.Semaphore(self._concurrency), loop
        slots = self._slots
        try:
            async with asyncio.timeout(self._patience):
                await slots.acquire()
        except TimeoutError:
            raise Overloaded(
                "Too many sign-ins and sign-ups right now. Retry in a few seconds.",
                retry_after=max(1, round(self._patience)),
            ) from None
        try:
            yield
        finally:
            slots.release()


DEFAULT_KID = "default"


class SigningKeys:
    """The HMAC keys by `kid`: tokens are signed with the active one and verified with whichever
    key their header names, so a key can be rotated out without logging everybody off."""

    def __init__(self, keys: Mapping[str, str], active_kid: str) -> None:
        if not keys or active_kid not in keys:
            raise ValueError(f"the active JWT kid {active_kid!r} is not among the configured keys")
        if any(not secret for secret in keys.values()):
            raise ValueError("a configured JWT key is empty")
        self._keys = dict(keys)
        self.active_kid = active_kid
        # The header segment PyJWT writes for each kid: a token of ours names its key in those
        # exact bytes, found without decoding the header (a tenth of verifying a new token).
        self._by_header = {
            jwt.encode({}, secret, ALGORITHM, headers={"kid": kid}).partition(".")[0]: secret
            for kid, secret in self._keys.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKeys:
        if settings.jwt_keys:
            return cls(settings.jwt_keys, settings.jwt_active_kid or "")
        if (kept_in := settings.dev_jwt_secret_file) is not None:
            return cls({DEFAULT_KID: kept_secret(kept_in)}, DEFAULT_KID)
        return cls({DEFAULT_KID: settings.jwt_secret or DEMO_JWT_SECRET}, DEFAULT_KID)

    @property
    def active_secret(self) -> str:
        return self._keys[self.active_kid]

    def secret(self, kid: object) -> str | None:
        return self._keys.get(kid) if isinstance(kid, str) else None

    def mac(self, message: bytes) -> str:
        """HMAC-SHA256 of `message` with the active key, base64url."""
        return _mac(self.active_secret, message)

    def verifies(self, message: bytes, mac: str) -> bool:
        """Whether `mac` is `message`'s under any configured key (one rotated in since, too)."""
        given = mac.encode()
        return any(
            hmac.compare_digest(_mac(secret, message).encode(), given)
            for secret in self._keys.values()
        )

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT of `claims`, signed with the active key and naming it (`kid`)."""
        return jwt.encode(claims, self.active_secret, ALGORITHM, headers={"kid": self.active_kid})

    def verified_claims(
        self, token: str, *, issuer: str, audience: str, require: list[str]
    ) -> dict[str, Any] | None:
        """`token`'s claims once its signature, `iss` and `aud` check out; None if no key we
        hold can vouch for it; jwt.PyJWTError if it is invalid. `exp` is left to the caller's
        clock (an injected one), `iat` to nobody."""
        secret = self.secret_for(token)
        if secret is None:  # no kid, or one rotated out
            return None
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": require, "verify_exp": False, "verify_iat": False},
        )
        return claims

    def secret_for(self, token: str) -> str | None:
        """The key that `token`'s header names; None for no kid or one rotated out."""
        secret = self._by_header.get(token.partition(".")[0])
        if secret is None:  # a header written otherwise: read it
            secret = self.secret(jwt.get_unverified_header(token).get("kid"))
        return secret


def _mac(secret: str, message: bytes) -> str:
    digest = hmac.digest(secret.encode(), message, "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class AccessClaims:
    """Who an access token speaks for, and the login session (refresh family) it belongs to."""

    user_id: UUID
    role: Role
    session_id: UUID

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=self.role)


@dataclass(frozen=True)
class RefreshClaims:
    user_id: UUID
    session_id: UUID
    token_id: UUID


VERIFIED_TOKENS_KEPT = 100_000  # ~30 MB at most: every buyer of a 10,000-seat sale, and more


class Tokens:
    """Encodes and checks our JWTs: the algorithm is pinned; kid, expiry, type, issuer and
    audience required. `iss`/`aud` keep a token minted for another service that shares a key
    (or for another deployment of ours) from being taken here.

    Expiry is judged by the injected clock, the one that stamped `iat`/`exp`, not by PyJWT's
    wall clock: otherwise a manual clock (tests, benchmarks) would mint tokens already expired.
    """

    def __init__(
        self,
        keys: SigningKeys,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        clock: Clock | None = None,
        *,
        issuer: str,
        audience: str,
    ) -> None:
        self._keys = keys
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._clock = clock or SystemClock()
        self._issuer, self._audience = issuer, audience
        # Access tokens already verified, with their expiry: a buyer's client sends the same
        # token with every request for 15 minutes, and checking its signature again each time
        # was a tenth of a sold-out answer's cost. Expiry is still judged on every use.
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

    def access_token(self, user_id: UUID, role: Role, session_id: UUID, now: datetime) -> str:
        # `sid` ties the token to its session, so ending the session revokes the token too.
        claims = {"sub": str(user_id), "role": role.value, "sid": str(session_id), "typ": "access"}
        return self._encode(claims, now, self.access_ttl)

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

    def access_claims(self, token: str) -> AccessClaims:
        verified = self._verified.get(token)
        if verified is not None:
            access, expires = verified
            if expires <= self._clock.now().timestamp():
                raise AuthenticationFailed("The access token has expired.")
            return access
        claims = self._decode(token, "access")
        try:
            access = AccessClaims(UUID(claims["sub"]), Role(claims["role"]), UUID(claims["sid"]))
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise AuthenticationFailed("The access token is malformed.") from error
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # crude but bounded; the busy tokens come straight back
        self._verified[token] = (access, float(claims["exp"]))
        return access

    def refresh_claims(self, token: str) -> RefreshClaims:
        claims = self._decode(token, "refresh")
        try:
            return RefreshClaims(UUID(claims["sub"]), UUID(claims["sid"]), UUID(claims["jti"]))
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise AuthenticationFailed("The refresh token is malformed.") from error

    def password_reset_token(self, reset_id: UUID) -> str:
        """`<reset id>.<MAC of it>`: nothing secret is stored (the database and the event store
        hold the id only), and the mailer and the confirmation both recompute it."""
        return f"{reset_id}.{self._keys.mac(PASSWORD_RESET + reset_id.bytes)}"

    def password_reset_id(self, token: str) -> UUID | None:
        """The reset a token names, if we made it; None for anything else."""
        named, _, mac = token.partition(".")
        try:
            reset_id = UUID(named)
        except ValueError:
            return None
        return reset_id if self._keys.verifies(PASSWORD_RESET + reset_id.bytes, mac) else None

    def _encode(self, claims: dict[str, Any], now: datetime, ttl: timedelta) -> str:
        return self._keys.sign(
            {**claims, "iss": self._issuer, "aud": self._audience, "iat": now, "exp": now + ttl}
        )

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims = self._keys.verified_claims(
                token,
                issuer=self._issuer,
                audience=self._audience,
                require=["exp", "sub", "iss", "aud"],
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(f"The {kind} token is invalid.") from error
        if claims is None:
            raise AuthenticationFailed(f"The {kind} token is signed with an unknown key.")
        expires = claims["exp"]
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise AuthenticationFailed(f"The {kind} token is invalid.")
        if expires <= self._clock.now().timestamp():
            raise AuthenticationFailed(f"The {kind} token has expired.")
        if claims.get("typ") != kind:
            raise AuthenticationFailed(f"This is not an {kind} token.")
        return claims
