"""Rate limits (the `limits` library): logins per IP and per account, bookings per user, password
reset requests per IP and per address, and a per-IP default for every other request. Redis
storage when configured (one count shared by every app process), memory otherwise (a count per
process).

When the storage fails (Redis down), logins fail CLOSED: 503 with Retry-After. The login limits
are all that stands between a password and unlimited guessing; an outage, or an attacker able to
cause one, must not switch them off. Signed-in users carry on: access tokens and refreshes do not
log in. Everything else fails OPEN, with a logged warning: those limits protect capacity, not
secrets, the database still enforces every rule of a sale, and refusing all traffic because a
cache is down would turn a Redis outage into a full outage.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from ticketflow.api.client_ip import parse_networks
from ticketflow.config import Settings
from ticketflow.domain.errors import ServiceUnavailable, TooManyRequests
from ticketflow.services.security_events import security_event

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 30.0  # one "failing open" warning per this while the storage is down
REDIS_TIMEOUT_SECONDS = 0.5  # a hung Redis must not hang every request behind a limit


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits.strip().lower() != "off"
        self.proxies = parse_networks(settings.trusted_proxies)
        self.password_checks_per_ip = parse_many(settings.rate_limit_login_per_ip)
        self.login_failures_per_account = parse_many(settings.rate_limit_login_per_account)
        self.bookings_per_user = parse_many(settings.rate_limit_bookings_per_user)
        self.password_resets_per_ip = parse_many(settings.rate_limit_password_reset_per_ip)
        self.password_resets_per_account = parse_many(
            settings.rate_limit_password_reset_per_account
        )
        self.default_per_ip = parse_many(settings.rate_limit_default_per_ip)
        self._pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if settings.redis_url:
            self._pool = ConnectionPool.from_url(
                settings.redis_url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # ours, so we can close it
            )
        # Login limits are small: counted exactly. The others are large and hot: a sliding
        # window counter keeps two counters per key instead of one entry per request.
        self._exact: RateLimiter = MovingWindowRateLimiter(storage)
        self._cheap: RateLimiter = SlidingWindowCounterRateLimiter(storage)
        self._warned_at = -math.inf

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    @asynccontextmanager
    async def login_attempt(self, ip: str, account: str) -> AsyncIterator[None]:
        """Guards one password check (a login: `account` is the e-mail; a password change: the
        user id): refused while the IP or the account is over its limit. The attempt
        counts against the account BEFORE the password is checked (~100 ms), so guesses sent in
        parallel can't all pass a test made before any of them was counted; a right password
        forgives the account's count, so a user who knows theirs is never locked out by logging
        in often."""
        if not self.enabled:
            yield
            return
        account = _account_key(account)
        try:
            await self._take(self._exact, self.password_checks_per_ip, "password-ip", ip)
            per_account = self.login_failures_per_account
            await self._take(self._exact, per_account, "login-failures", account)
        except TooManyRequests as refused:
            security_event("login_rate_limited", ip=ip, retry_after=refused.retry_after)
            raise
        except StorageError as error:
            log.error("rate limits: storage unavailable, refusing logins (fail closed): %s", error)
            raise ServiceUnavailable(
                "Logging in is paused while its brute-force protection is unavailable.",
                retry_after=5,
            ) from error
        yield  # a wrong password (or any failure) stays counted
        try:
            for item in self.login_failures_per_account:
                await self._exact.clear(item, "login-failures", account)
        except StorageError as error:
            self._warn(f"could not forgive a successful login's attempts: {error}")

    async def check_password_hashing(self, ip: str) -> None:
        """Registering (or resetting a password) hashes a password like logging in does: same
        per-IP budget of CPU."""
        await self._open_on_failure(self._exact, self.password_checks_per_ip, "password-ip", ip)

    async def check_password_reset(self, ip: str, email: str) -> None:
        """Reset mails per IP and per address, whether or not it has an account (so a refusal
        tells nothing): nobody gets their inbox flooded through us."""
        await self._open_on_failure(self._exact, self.password_resets_per_ip, "reset-ip", ip)
        per_account = self.password_resets_per_account
        await self._open_on_failure(self._exact, per_account, "reset-account", _account_key(email))

    async def check_booking(self, user_id: UUID) -> None:
        await self._open_on_failure(self._cheap, self.bookings_per_user, "bookings", str(user_id))

    async def check_default(self, ip: str) -> None:
        await self._open_on_failure(self._cheap, self.default_per_ip, "default-ip", ip)

    async def _open_on_failure(
        self, limiter: RateLimiter, items: list[RateLimitItem], *key: str
    ) -> None:
        if not self.enabled:
            return
        try:
            await self._take(limiter, items, *key)
        except StorageError as error:
            self._warn(f"storage unavailable, letting requests through (fail open): {error}")

    async def _take(self, limiter: RateLimiter, items: list[RateLimitItem], *key: str) -> None:
        for item in items:
            if not await limiter.hit(item, *key):
                raise await self._refusal(limiter, item, *key)

    @staticmethod
    async def _refusal(limiter: RateLimiter, item: RateLimitItem, *key: str) -> TooManyRequests:
        reset_at, _ = await limiter.get_window_stats(item, *key)
        retry_after = max(1, math.ceil(reset_at - time.time()))  # `limits` counts in wall time
        return TooManyRequests(
            f"Rate limit of {item} used up; try again in {retry_after} s.", retry_after=retry_after
        )

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("rate limits: %s", message)


def _account_key(email: str) -> str:
    """Accounts are counted by a hash of the e-mail: no addresses in Redis keys."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
