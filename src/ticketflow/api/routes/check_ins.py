"""Check-in at the door: admit a ticket by its code, once."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from ticketflow.api.deps import Bus, CurrentActor
from ticketflow.api.schemas import CheckInIn, CheckInOut
from ticketflow.domain import commands as cmd

router = APIRouter(tags=["check-ins"])


@router.post(
    "/events/{event_id}/check-ins",
    status_code=201,
    summary="Admit a ticket by its code (the event's organizer or an admin)",
    responses={
        404: {"description": "No such event, or no ticket of it has that code"},
        409: {
            "description": "Already admitted (`admitted_at` says when; problem type "
            "already-checked-in), the ticket is void (ticket-void), or the event is not live"
        },
    },
)
async def check_in(event_id: UUID, body: CheckInIn, actor: CurrentActor, bus: Bus) -> CheckInOut:
    check_in = await bus.handle(cmd.CheckInTicket(actor, event_id, body.code))
    return CheckInOut.model_validate(check_in)
