"""The optional Redis connection: a cache and a fast lane, never the source of truth."""

from __future__ import annotations

from redis.asyncio import Redis

from ticketflow.config import Settings


def create_redis(settings: Settings) -> Redis | None:
    """A client for `TICKETFLOW_REDIS_URL`, or None in the embedded mode (in-process instead)."""
    if not settings.redis_url:
        return None
    return Redis.from_url(settings.redis_url, decode_responses=False, health_check_interval=30)
