"""The optional Redis connection: a cache and a fast lane, never the source of truth."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from ticketflow.config import Settings


def create_redis(settings: Settings) -> Redis | None:
    """A client for `TICKETFLOW_REDIS_URL`, or None in the embedded mode (in-process instead)."""
    if not settings.redis_url:
        return None
    # A blocking pool: under a burst, callers wait briefly for a connection instead of failing
    # at once when redis-py's default pool (100) is exhausted.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
