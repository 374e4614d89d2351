"""An event's waiting room: join it, look at your place (the heartbeat), or follow it as a
stream of Server-Sent Events until your turn comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ticketflow.api.deps import Bus, CurrentActor
from ticketflow.api.waiting_room_schemas import PlaceOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError
from ticketflow.domain.waiting_room import PlaceState
from ticketflow.services.messagebus import MessageBus

router = APIRouter(tags=["waiting room"])
SSE = "text/event-stream"
ROOM_PROBLEMS: dict[int | str, dict[str, Any]] = {
    409: {"description": "The event has no waiting room on, or it is not open yet"},
    503: {"description": "The room's line was lost: closed (Retry-After)"},
}


@router.post(
    "/events/{event_id}/queue",
    summary="Join the event's waiting room (one place per account: again, the same place)",
    responses=ROOM_PROBLEMS,
)
async def join_queue(event_id: UUID, actor: CurrentActor, bus: Bus) -> PlaceOut:
    return PlaceOut.of(await bus.handle(cmd.JoinWaitingRoom(actor=actor, event_id=event_id)))


@router.get(
    "/events/{event_id}/queue/{ticket_id}",
    summary="Your place: ask at least once a minute, or it is skipped when its turn comes",
    responses=ROOM_PROBLEMS,
)
async def see_place(event_id: UUID, ticket_id: UUID, actor: CurrentActor, bus: Bus) -> PlaceOut:
    return PlaceOut.of(await bus.handle(cmd.VisitPlace(actor, event_id, ticket_id)))


@router.get(
    "/events/{event_id}/queue/{ticket_id}/stream",
    summary="Your place as Server-Sent Events (also the heartbeat), until admitted or expired",
    responses={200: {"content": {SSE: {"schema": {"type": "string"}}}}, **ROOM_PROBLEMS},
)
async def follow_place(
    event_id: UUID, ticket_id: UUID, actor: CurrentActor, bus: Bus
) -> StreamingResponse:
    visit = cmd.VisitPlace(actor, event_id, ticket_id)
    first = PlaceOut.of(await bus.handle(visit))  # refused as the GET is, before streaming
    return StreamingResponse(
        _frames(bus, visit, first),
        media_type=SSE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _frames(bus: MessageBus, visit: cmd.VisitPlace, place: PlaceOut) -> AsyncIterator[str]:
    every = bus.deps.settings.waiting_room_stream_seconds
    while True:
        yield f"event: place\ndata: {place.model_dump_json()}\n\n"
        if place.state is not PlaceState.WAITING:
            return  # admitted (the token is in this frame) or expired: nothing more to say
        await asyncio.sleep(every)
        try:
            place = PlaceOut.of(await bus.handle(visit))
        except DomainError:
            return  # the room closed meanwhile: the client reconnects and is told why
