"""The buyer's own bookings and tickets: status, QR codes, cancel or refund, a printable ticket."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import segno
from fastapi import APIRouter, Query, Request
from markupsafe import Markup
from starlette.responses import Response

from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import NotFound
from ticketflow.domain.model import BookingStatus
from ticketflow.domain.refund_policy import buyer_refunds_closed
from ticketflow.services import queries, read_models, storefront
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.session import SignedIn

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def qr_svg(code: str, scale: int = 4) -> Markup:
    """The ticket's code as an inline SVG QR code (no Micro QR: phone scanners miss those).
    Markup: segno writes it from the code, which is ours (letters and digits)."""
    svg = segno.make_qr(code, error="m").svg_inline(scale=scale, svgclass="qr", lineclass=None)
    return Markup(
        svg.replace("<svg ", f'<svg role="img" aria-label="QR code of ticket {code}" ', 1)
    )


@router.get("/my/bookings")
async def my_bookings(
    request: Request,
    session: SignedIn,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    async with bus_of(request).engine.connect() as db:
        page = await read_models.my_bookings(db, session.actor, cursor=cursor, limit=DEFAULT_LIMIT)
        paid = [b for b in page.items if b["status"] == BookingStatus.CONFIRMED.value]
        tickets = await storefront.tickets_of_bookings(db, [b["id"] for b in paid])
        terms = await storefront.refund_terms(db, paid)
    now = bus_of(request).deps.clock.now()
    return await private_page(
        request,
        "my_bookings.html",
        page=page,
        tickets=tickets,
        refunds_closed={
            booking_id: buyer_refunds_closed(now, **booking_terms)
            for booking_id, booking_terms in terms.items()
        },
        qr_svg=qr_svg,
        now=now,
    )


@router.get("/my/bookings/{booking_id}/print")
async def printable_tickets(request: Request, booking_id: UUID, session: SignedIn) -> Response:
    async with bus_of(request).engine.connect() as db:
        booking = await queries.booking_detail(db, booking_id, session.actor)
        if booking["user_id"] != session.actor.user_id:  # an organizer's view is elsewhere
            raise NotFound("No such booking.")
        event = await queries.event_row(db, booking["event_id"])
        tickets = (await storefront.tickets_of_bookings(db, [booking_id]))[booking_id]
    return await private_page(
        request, "print_tickets.html", booking=booking, event=event, tickets=tickets, qr_svg=qr_svg
    )


@router.post("/my/bookings/{booking_id}/cancel")
async def cancel(request: Request, booking_id: UUID, session: SignedIn) -> Response:
    await bus_of(request).handle(cmd.CancelBooking(actor=session.actor, booking_id=booking_id))
    return see_other("/my/bookings?notice=cancelled")


@router.post("/my/bookings/{booking_id}/refund")
async def refund(request: Request, booking_id: UUID, session: SignedIn) -> Response:
    await bus_of(request).handle(cmd.RefundBooking(session.actor, booking_id))
    return see_other("/my/bookings?notice=refunded")
