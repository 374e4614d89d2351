"""A real HTTP server for webhook tests: aiohttp on a free local port, recording each delivery
and answering with the status the test sets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 200
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def webhook_receiver(status: int = 200) -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        receiver.received.append(Received(dict(request.headers), await request.read()))
        receiver.arrived.set()
        return web.Response(status=receiver.status, text="noted")

    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url, receiver.status = f"http://{host}:{port}/hooks", status
    try:
        yield receiver
    finally:
        await runner.cleanup()
