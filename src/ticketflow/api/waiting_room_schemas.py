"""Bodies of the waiting room's answers (its configuration's are in api/schemas.py, with the
event's)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from ticketflow.domain.waiting_room import PlaceState
from ticketflow.services.waiting_rooms import PlaceView


class PriceRangeOut(BaseModel):
    min_minor: int
    max_minor: int
    currency: str


class PlaceOut(BaseModel):
    ticket_id: UUID
    position: int | None = Field(
        description="Your place in the line from 1 while waiting; null before the sale opens "
        "(the pre-queue is shuffled then) and once out of the line"
    )
    state: PlaceState
    eta_seconds: int = Field(description="Estimated seconds until admission (0 once out)")
    look_again_seconds: int = Field(
        description="While waiting: look again (GET this place: the heartbeat) in about this "
        "many seconds, 2 to 30, sooner the nearer your turn; 0 once out of the line"
    )
    admission_token: str | None = Field(
        None,
        description="Once admitted: send it as the `TicketFlow-Admission` header of "
        "POST /bookings for this event, until your session ends",
    )
    admission_expires_at: datetime | None = Field(
        None, description="Once admitted: when the session (and the admission token) ends"
    )
    price_range: PriceRangeOut | None = Field(description="What this event's tickets cost")
    tickets_left: int | None = Field(
        None,
        description="Tickets of this event neither sold nor held, a moment ago. The room admits "
        "no more buyers than there are tickets left for them: at 0 nobody more is admitted "
        "until held tickets come back (holds that expire unpaid, cancellations)",
    )

    @classmethod
    def of(cls, place: PlaceView) -> PlaceOut:
        return cls.model_validate(place, from_attributes=True)
