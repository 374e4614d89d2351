"""Checkout: the held booking with its countdown, paying for it, or letting it go."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError
from ticketflow.domain.model import BookingStatus
from ticketflow.payment_provider.ledger import DECLINE_REASONS
from ticketflow.services import queries
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.session import SignedIn

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PaymentMethod = Annotated[str, Form(min_length=1, max_length=100)]
# The sandbox provider's test cards (payment_provider/ledger.py), listed outside production.
SANDBOX_CARDS = [
    ("pm_card_visa", "Visa: payment succeeds"),
    *(
        (method, f"Declined: {reason.replace('_', ' ')}")
        for method, reason in DECLINE_REASONS.items()
    ),
]


async def _checkout_page(
    request: Request,
    session: SignedIn,
    booking_id: UUID,
    status: int = 200,
    error: DomainError | None = None,
) -> Response:
    bus = bus_of(request)
    async with bus.engine.connect() as db:
        booking = await queries.booking_detail(db, booking_id, session.actor)
        event = await queries.event_row(db, booking["event_id"])
    if booking["status"] == BookingStatus.CONFIRMED.value:  # paid (a second submit, too)
        return see_other(f"/my/bookings?notice=paid#booking-{booking_id}")
    assert event is not None  # a booking's event is never deleted
    names = {tt["id"]: tt["name"] for tt in event["ticket_types"]}
    production = bus.deps.settings.environment == "production"
    return await private_page(
        request,
        "checkout.html",
        status,
        booking=booking,
        event=event,
        names=names,
        error=error,
        sandbox_cards=[] if production else SANDBOX_CARDS,
        now=bus.deps.clock.now(),
    )


@router.get("/checkout/{booking_id}")
async def checkout(request: Request, booking_id: UUID, session: SignedIn) -> Response:
    return await _checkout_page(request, session, booking_id)


@router.post("/checkout/{booking_id}/pay")
async def pay(
    request: Request, booking_id: UUID, session: SignedIn, payment_method: PaymentMethod
) -> Response:
    """Paying twice charges once: a payment in flight for the booking is resumed, and a paid
    booking is not paid again (services/payments.py)."""
    try:
        await bus_of(request).handle(cmd.PayForBooking(session.actor, booking_id, payment_method))
    except DomainError as refusal:  # declined: the hold stays, the buyer may try another card
        return await _checkout_page(request, session, booking_id, refusal.status, refusal)
    return see_other(f"/my/bookings?notice=paid#booking-{booking_id}")
