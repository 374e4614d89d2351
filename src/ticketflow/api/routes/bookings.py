"""Buyers' bookings: hold tickets, list and read them, cancel a hold."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
from ticketflow.api.rate_limit_guards import BOOKING_LIMIT
from ticketflow.api.schemas import BookingIn, BookingOut, BookingPage
from ticketflow.domain import commands as cmd
from ticketflow.services import queries, read_models
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(tags=["bookings"])
ADMISSION_HEADER = "TicketFlow-Admission"
Admission = Annotated[
    str | None,
    Header(
        alias=ADMISSION_HEADER,
        description="The admission token from the event's waiting room, while it is on",
    ),
]


# Most of these requests never reach this route: api/booking_hot_path.py serves them first.
@router.post(
    "/bookings",
    status_code=201,
    summary="Hold tickets: a pending booking",
    responses={
        403: {"description": "The event's waiting room is on: no valid admission (`not-admitted`)"},
        409: {
            "description": "Sold out, not enough tickets, sales closed, or the buyer's cap "
            "reached (`buyer-limit-reached`, with `remaining`)"
        },
    },
    dependencies=[BOOKING_LIMIT],
)
async def create_booking(
    body: BookingIn, actor: CurrentActor, bus: Bus, admission: Admission = None
) -> BookingOut:
    booking = await bus.handle(
        cmd.HoldTickets(
            actor=actor,
            event_id=body.event_id,
            lines=tuple((line.ticket_type_id, line.quantity) for line in body.lines),
            admission=admission,
        )
    )
    return BookingOut.of(booking, updated_at=booking.created_at)


@router.get(
    "/bookings",
    summary="Your bookings, newest first",
    description="With ticket details: event title, ticket type names, issued ticket ids.",
)
async def list_bookings(
    actor: CurrentActor, db: ReadConnection, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> BookingPage:
    page = await read_models.my_bookings(db, actor, cursor=cursor, limit=limit)
    return BookingPage.model_validate(page, from_attributes=True)


@router.get("/bookings/{booking_id}", summary="One booking (yours, or on your event)")
async def get_booking(booking_id: UUID, actor: CurrentActor, db: ReadConnection) -> BookingOut:
    return BookingOut.model_validate(await queries.booking_detail(db, booking_id, actor))


@router.post("/bookings/{booking_id}/cancel", summary="Cancel a held booking; tickets return")
async def cancel_booking(
    booking_id: UUID, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> BookingOut:
    await bus.handle(cmd.CancelBooking(actor=actor, booking_id=booking_id))
    return BookingOut.model_validate(await queries.booking_detail(db, booking_id, actor))
