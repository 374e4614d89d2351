"""Bookings sent from a thread with an event loop of its own.

The room phase drives tens of thousands of conversations from the bench's main event loop,
which keeps it busy (its timers fire half a second late at p99 at full scale): a hold timed
there is mostly that lateness, not the app's. Sent and timed here, from the request's send to
its answer, a hold's latency is the app's and the network's, as an admitted buyer's own browser
would see it. (The thread still shares the interpreter's lock with the main loop: a few
milliseconds of switching, against the half second it replaces.)"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


class BookingDesk:
    def __init__(self, base_url: str, connections: int, timeout: aiohttp.ClientTimeout) -> None:
        self._base_url, self._connections, self._timeout = base_url, connections, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BookingDesk:
        self._thread.start()
        await self._there(self._open())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._there(self._session.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()

    async def post(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, float]:
        """The answer's status and the seconds from sending the request to reading the answer,
        timed on the desk's own loop; aiohttp's errors and timeouts raise here."""
        return await self._there(self._post(path, body, headers))

    async def _open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            self._base_url, connector=connector, timeout=self._timeout
        )

    async def _post(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, float]:
        assert self._session is not None
        sent = time.monotonic()
        async with self._session.post(path, json=body, headers=headers) as answer:
            await answer.read()
            return answer.status, time.monotonic() - sent

    async def _there(self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))
