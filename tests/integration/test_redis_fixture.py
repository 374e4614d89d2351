"""The throwaway Redis the tests use is real and ours alone."""

from __future__ import annotations

from redis.asyncio import Redis


async def test_throwaway_redis_answers_and_is_not_the_shared_one(redis_url: str) -> None:
    assert not redis_url.endswith(":6379/0")
    client = Redis.from_url(redis_url)
    try:
        await client.set("ticketflow:probe", b"1")
        assert await client.get("ticketflow:probe") == b"1"
    finally:
        await client.aclose()
