"""Live availability of a published event: WebSocket, or Server-Sent Events over plain GET
(`Accept: text/event-stream`); a GET asking for neither gets the current availability once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from ticketflow.api.client_ip import client_ip
from ticketflow.api.deps import Bus
from ticketflow.api.errors import PROBLEM_JSON
from ticketflow.domain.errors import DomainError, NotFound, TooManyRequests
from ticketflow.domain.model import EventStatus
from ticketflow.services import queries
from ticketflow.services.live_availability import (
    Availability,
    LiveAvailability,
    SlowSubscriber,
    Subscription,
)
from ticketflow.services.messagebus import MessageBus

router = APIRouter(tags=["events"])
PATH = "/events/{event_id}/live"
SSE = "text/event-stream"
TRY_AGAIN_LATER = 1013  # WebSocket close code: the server is overloaded
RETRY_STREAM_SECONDS = 5


class StreamCaps:
    """How many live streams one client address, and this whole process, may hold open: each
    is a socket and a subscription for minutes, so without a bound one client could hold them
    all."""

    def __init__(self, per_ip: int, per_process: int) -> None:
        self._per_ip, self._per_process = per_ip, per_process
        self._open: dict[str, int] = {}
        self._total = 0

    def take(self, ip: str) -> TooManyRequests | None:
        """None: a stream is now counted for `ip` (give it back when it ends); else why not."""
        if self._total >= self._per_process:
            why = "This server has as many live streams open as it serves"
        elif self._open.get(ip, 0) >= self._per_ip:
            why = f"You have {self._per_ip} live streams open; close one"
        else:
            self._open[ip] = self._open.get(ip, 0) + 1
            self._total += 1
            return None
        return TooManyRequests(f"{why}, or retry later.", retry_after=RETRY_STREAM_SECONDS)

    def give_back(self, ip: str) -> None:
        left = self._open[ip] - 1
        if left:
            self._open[ip] = left
        else:
            del self._open[ip]
        self._total -= 1


class TicketTypeAvailabilityOut(BaseModel):
    ticket_type_id: UUID
    available: int


class LiveAvailabilityOut(BaseModel):
    event_id: UUID
    ticket_types: list[TicketTypeAvailabilityOut]


def _body(update: Availability) -> str:
    types = sorted(update.available.items(), key=lambda item: str(item[0]))
    return json.dumps(
        {
            "event_id": str(update.event_id),
            "ticket_types": [{"ticket_type_id": str(tt), "available": n} for tt, n in types],
        },
        separators=(",", ":"),
    )


async def _published(bus: MessageBus, event_id: UUID) -> None:
    """Asked on every handshake: answered from the hot path's copy of the catalog (no query
    while a crowd opens streams), and refused only after a fresh read says so."""
    for fresh in (False, True):
        snapshot = await bus.deps.catalog.get(event_id, fresh=fresh)
        if snapshot is not None and snapshot[0].status is EventStatus.PUBLISHED:
            return
    raise NotFound("No such event on sale.")


@router.get(
    PATH,
    summary="Live availability: WebSocket, SSE, or once",
    description="Open a WebSocket here, or send `Accept: text/event-stream` for Server-Sent "
    "Events: first the availability now, then the new availability within about a second of "
    "every booking or release (`event: availability`, `id:` the stream position, a keepalive "
    "comment every 15 s; a reconnect with `Last-Event-ID` gets a fresh snapshot). Any other "
    "Accept gets the availability now as JSON. Published events only; no token needed.",
    response_model=LiveAvailabilityOut,
    responses={200: {"content": {SSE: {"schema": {"type": "string"}}}}},
)
async def live_availability(event_id: UUID, request: Request, bus: Bus) -> Response:
    await _published(bus, event_id)
    hub: LiveAvailability = request.app.state.live
    if SSE not in request.headers.get("accept", ""):
        async with bus.engine.connect() as connection:
            available = await queries.availability(connection, event_id)
        return JSONResponse(json.loads(_body(Availability(event_id, available, ""))))
    caps: StreamCaps = request.app.state.live_caps
    ip = client_ip(request.scope, request.app.state.rate_limits.proxies)
    if (refused := caps.take(ip)) is not None:
        raise refused
    try:
        subscription, snapshot = await hub.subscribe(event_id)
    except BaseException:
        caps.give_back(ip)
        raise
    keepalive = bus.deps.settings.live_keepalive_seconds
    return StreamingResponse(
        _server_sent_events(hub, subscription, snapshot, keepalive, lambda: caps.give_back(ip)),
        media_type=SSE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(update: Availability) -> str:
    return f"event: availability\nid: {update.entry_id}\ndata: {_body(update)}\n\n"


async def _server_sent_events(
    hub: LiveAvailability,
    subscription: Subscription,
    snapshot: Availability,
    keepalive: float,
    ended: Callable[[], None],
) -> AsyncIterator[str]:
    try:
        yield _frame(snapshot)
        while True:
            try:
                update = await asyncio.wait_for(subscription.next(), keepalive)
            except TimeoutError:
                yield ": keepalive\n\n"  # a comment: keeps proxies from closing an idle stream
                continue
            yield _frame(update)
    except SlowSubscriber:
        return  # the client reconnects and starts again from a snapshot
    finally:
        hub.unsubscribe(subscription)
        ended()


@router.websocket(PATH)
async def live_availability_socket(websocket: WebSocket, event_id: str) -> None:
    bus: MessageBus = websocket.app.state.bus
    hub: LiveAvailability = websocket.app.state.live
    caps: StreamCaps = websocket.app.state.live_caps
    try:
        try:
            parsed = UUID(event_id)
        except ValueError as error:
            raise NotFound("No such event on sale.") from error
        await _published(bus, parsed)
    except DomainError as error:  # refused before the upgrade, as a plain HTTP answer
        await _deny(websocket, error)
        return
    ip = client_ip(websocket.scope, websocket.app.state.rate_limits.proxies)
    if caps.take(ip) is not None:
        await websocket.accept()
        await websocket.close(code=TRY_AGAIN_LATER, reason="too many live streams")
        return
    try:
        subscription, snapshot = await hub.subscribe(parsed)
        try:
            await websocket.accept()
            await websocket.send_text(_body(snapshot))
            await _push_updates(websocket, subscription)
        except (WebSocketDisconnect, SlowSubscriber):
            pass
        finally:
            hub.unsubscribe(subscription)
    finally:
        caps.give_back(ip)


async def _push_updates(websocket: WebSocket, subscription: Subscription) -> None:
    """Send each update until the client goes away (what it sends us is ignored)."""
    closed = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        while True:
            update = asyncio.ensure_future(subscription.next())
            await asyncio.wait({update, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                update.cancel()
                return
            await websocket.send_text(_body(update.result()))
    finally:
        closed.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await closed


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _deny(websocket: WebSocket, error: DomainError) -> None:
    if "websocket.http.response" not in websocket.scope.get("extensions", {}):
        await websocket.close(code=1008)  # the server can't answer in HTTP: a policy close
        return
    body = {
        "type": f"urn:ticketflow:problem:{error.code}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": websocket.url.path,
    }
    response = JSONResponse(body, status_code=error.status, media_type=PROBLEM_JSON)
    await websocket.send_denial_response(response)
