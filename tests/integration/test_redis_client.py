"""The app's Redis client, its commands packed by hiredis, against a real redis-server."""

from __future__ import annotations

import pytest
from redis.exceptions import DataError

from ticketflow.adapters.redis_client import create_redis

from ..conftest import settings_for


async def test_commands_pipelines_and_streams_round_trip(
    postgresql_url: str, redis_url: str
) -> None:
    client = create_redis(settings_for(postgresql_url, redis_url=redis_url))
    assert client is not None
    try:
        assert client.connection_pool.connection_class.__name__ == "HiredisPackedConnection"
        await client.set("tf:text", "billet à 10 €")
        await client.set("tf:number", 1.5)
        assert await client.mget("tf:text", "tf:number") == ["billet à 10 €".encode(), b"1.5"]
        await client.client_setname("tf-probe")  # a command of two words
        assert await client.client_getname() == "tf-probe"  # redis-py decodes this one
        async with client.pipeline(transaction=True) as pipe:
            for seq in range(3):
                pipe.xadd("tf:events", {"seq": seq, "data": '{"q":1}'}, maxlen=100)
            ids = await pipe.execute()
        entries = await client.xrange("tf:events")
        assert [entry_id for entry_id, _ in entries] == ids
        assert entries[2][1] == {b"seq": b"2", b"data": b'{"q":1}'}
        with pytest.raises(DataError):
            await client.set("tf:none", None)  # type: ignore[arg-type]
        assert await client.exists("tf:none") == 0
    finally:
        await client.aclose()
