"""A minimal HTTP/1.1 keep-alive client connection: one request at a time, callback-driven.

An asyncio Protocol parsing answers itself costs ~19 us of client CPU per request here, aiohttp
~74 us (bench/README.md): the load generator shares two cores with the server, so every
microsecond it spends is taken from what it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import NamedTuple, cast


class Answer(NamedTuple):
    status: int
    body: bytes
    at: float  # time.monotonic() when the last byte arrived
    cache: bytes  # the X-Cache header ("hit" / "miss"), empty if none
    retry_after: bytes = b""  # the Retry-After header of a 429 or 503, empty if none


# Called once per request: the answer, or the exception that ended it (timeout, reset, ...).
OnDone = Callable[["HttpConnection", Answer | BaseException], None]


def build_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection(asyncio.Protocol):
    """`send()` writes a request; `on_done` hears how it ended. No pipelining."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._on_done: OnDone | None = None
        self.sent_at = 0.0  # when the request in flight was written (for the watchdog)
        self.intended = 0.0  # when it should have been sent: latency is measured from here
        self.closed = False

    @property
    def busy(self) -> bool:
        return self._on_done is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, on_done: OnDone) -> None:
        assert self._on_done is None, "one request at a time"
        self._on_done = on_done
        if self.closed or self._transport is None:
            self._finish(ConnectionResetError("connection closed before the request"))
            return
        self.sent_at = time.monotonic()
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._on_done is None:
            return
        try:
            parsed = _parse(self._buffer)
        except ValueError as error:
            self.abort(error)
            return
        if parsed is not None:
            status, body, used, keep_alive, cache, retry_after = parsed
            del self._buffer[:used]
            if not keep_alive:
                self.abort(None)
            self._finish(Answer(status, body, time.monotonic(), cache, retry_after))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._on_done is not None:
            self._finish(exc or ConnectionResetError("server closed the connection"))

    def abort(self, reason: BaseException | None) -> None:
        """Close now; a request in flight ends with `reason` (a timeout, a parse error)."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()
        if reason is not None and self._on_done is not None:
            self._finish(reason)

    def _finish(self, outcome: Answer | BaseException) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(self, outcome)


Parsed = tuple[int, bytes, int, bool, bytes, bytes]
# Only these answers are searched for Retry-After: one find more, on the rare answers only.
RETRY_STATUSES = (429, 503)


def _parse(buffer: bytearray) -> Parsed | None:
    """(status, body, bytes used, keep-alive, X-Cache, Retry-After) of a complete answer at the
    buffer's start, or None while it is incomplete."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = bytes(buffer[:head_end]).lower()
    if not head.startswith(b"http/1."):
        raise ValueError(f"not an HTTP/1 answer: {head[:40]!r}")
    status = int(head[9:12])
    keep_alive = b"\r\nconnection: close" not in head
    cache = _header(head, b"x-cache") or b""
    retry_after = (_header(head, b"retry-after") or b"") if status in RETRY_STATUSES else b""
    start = head_end + 4
    length = _header(head, b"content-length")
    if length is not None:
        end = start + int(length)
        if len(buffer) < end:
            return None
        return status, bytes(buffer[start:end]), end, keep_alive, cache, retry_after
    if _header(head, b"transfer-encoding") == b"chunked":
        return _chunked(buffer, status, start, keep_alive, cache, retry_after)
    if status in (204, 304):
        return status, b"", start, keep_alive, cache, retry_after
    raise ValueError("answer without Content-Length or chunked encoding")


def _header(head: bytes, name: bytes) -> bytes | None:
    found = head.find(b"\r\n" + name + b":")
    if found < 0:
        return None
    value_start = found + len(name) + 3
    value_end = head.find(b"\r\n", value_start)
    return head[value_start : value_end if value_end >= 0 else None].strip()


def _chunked(
    buffer: bytearray, status: int, start: int, keep_alive: bool, cache: bytes, retry_after: bytes
) -> Parsed | None:
    body = bytearray()
    position = start
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
        chunk_start = line_end + 2
        if len(buffer) < chunk_start + size + 2:
            return None
        if size == 0:  # no trailers are sent to us; the last chunk ends the answer
            return status, bytes(body), chunk_start + 2, keep_alive, cache, retry_after
        body += buffer[chunk_start : chunk_start + size]
        position = chunk_start + size + 2
