"""Reading a streamed answer (Server-Sent Events) from an ASGI app in-process: httpx's
ASGITransport waits for the whole body, which a live stream never finishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass
class ServerSentEvents:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    _chunks: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _buffer: bytes = b""

    async def next_event(self, within_seconds: float = 5.0) -> dict[str, Any]:
        """The next event (comments skipped): its fields, `data` parsed as JSON."""
        async with asyncio.timeout(within_seconds):
            while True:
                while b"\n\n" not in self._buffer:
                    self._buffer += await self._chunks.get()
                frame, self._buffer = self._buffer.split(b"\n\n", 1)
                fields: dict[str, Any] = {}
                for line in frame.decode().splitlines():
                    name, _, value = line.partition(": ")
                    if name:  # a line starting with ":" is a comment (keepalive)
                        fields[name] = value
                if fields:
                    fields["data"] = json.loads(fields["data"])
                    return fields


@asynccontextmanager
async def server_sent_events(
    app: ASGIApp, path: str, headers: dict[str, str] | None = None, client: str = "127.0.0.1"
) -> AsyncIterator[ServerSentEvents]:
    """GET `path` with `Accept: text/event-stream`; the client disconnects on exit."""
    stream = ServerSentEvents()
    started = asyncio.Event()
    gone = asyncio.Event()
    raw_headers = [(b"host", b"test"), (b"accept", b"text/event-stream")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": (client, 50000),
        "server": ("test", 80),
        "state": {},
    }
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            stream.status = message["status"]
            stream.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            started.set()
        elif message["type"] == "http.response.body":
            stream._chunks.put_nowait(message.get("body", b""))

    serving = asyncio.create_task(app(scope, receive, send))
    try:
        async with asyncio.timeout(5):
            await started.wait()
        yield stream
    finally:
        gone.set()
        async with asyncio.timeout(5):
            await serving
