"""Pre-opened keep-alive connections: opened in parallel, each proven served (one GET /health
answered) before any measurement, and a watchdog that times out requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from bench.background import in_background
from bench.http import Answer, HttpConnection, build_request

CONNECTS_AT_ONCE = 256
WARM_TIMEOUT = 20.0  # a server that can't answer one /health per connection in this is refused
WATCHDOG_INTERVAL = 0.05
WARM_REQUEST = build_request("GET", "/health")


class ConnectionsRefused(RuntimeError):
    """The server did not serve every connection we opened: the measurement would be a lie."""


async def connect(host: str, port: int) -> HttpConnection:
    _, connection = await asyncio.get_running_loop().create_connection(HttpConnection, host, port)
    return connection


async def open_connections(host: str, port: int, count: int) -> list[HttpConnection]:
    """`count` connections, each of which has had one request answered 200."""
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def one() -> HttpConnection:
        async with gate:
            connection = await connect(host, port)
        answered: asyncio.Future[Answer | BaseException] = (
            asyncio.get_running_loop().create_future()
        )
        connection.send(WARM_REQUEST, lambda _, outcome: answered.set_result(outcome))
        try:
            outcome = await asyncio.wait_for(answered, WARM_TIMEOUT)
        except TimeoutError:
            connection.abort(None)
            raise
        if not isinstance(outcome, Answer) or outcome.status != 200:
            raise ConnectionsRefused(f"warm-up request failed: {outcome!r}")
        return connection

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    opened = [result for result in results if isinstance(result, HttpConnection)]
    failed = [result for result in results if not isinstance(result, HttpConnection)]
    if failed:
        for connection in opened:
            connection.abort(None)
        raise ConnectionsRefused(
            f"{len(failed)} of {count} connections were not served within {WARM_TIMEOUT:.0f}s "
            f"(e.g. {failed[0]!r}); is the server's connection limit (granian backlog / "
            "backpressure) below the number of connections?"
        )
    return opened


@contextlib.asynccontextmanager
async def watchdog(
    connections: Callable[[], list[HttpConnection]], request_timeout: float
) -> AsyncIterator[None]:
    """While inside: any request in flight longer than `request_timeout` ends with TimeoutError (and
    its connection is closed, since a late answer would be taken for the next request's)."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            now = time.monotonic()
            for connection in connections():
                if connection.busy and now - connection.sent_at > request_timeout:
                    connection.abort(TimeoutError(f"no answer within {request_timeout:.0f}s"))

    async with in_background(watch()):
        yield


def close_all(connections: list[HttpConnection]) -> None:
    for connection in connections:
        connection.abort(None)
