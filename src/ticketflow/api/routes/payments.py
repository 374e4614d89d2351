"""Paying for a booking, its tickets, refunds, and the provider's signed callbacks."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from ticketflow.adapters import webhook_signing
from ticketflow.api.deps import Bus, CurrentActor, OneStatementRead, ReadConnection
from ticketflow.api.schemas import BookingOut, PaymentIn, PaymentOut, TicketList
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError
from ticketflow.services import queries

router = APIRouter(tags=["payments"])

# Documented in OpenAPI; the Idempotency middleware enforces it (400 without).
IDEMPOTENCY_KEY_REQUIRED = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "description": "One per payment or refund attempt, resent unchanged on retries",
            # What the middleware accepts: 1 to 255 visible ASCII characters.
            "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
        }
    ]
}


class BadSignature(DomainError):
    status, code, title = 400, "bad-signature", "Signature not valid"


@router.post(
    "/bookings/{booking_id}/payments",
    status_code=201,
    summary="Pay a held booking: charged once, confirmed with its tickets",
    responses={
        402: {"description": "Card declined; the hold stays"},
        503: {"description": "Provider unavailable; retry after Retry-After"},
    },
    openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
    response_model=PaymentOut,
)
async def pay(booking_id: UUID, body: PaymentIn, actor: CurrentActor, bus: Bus) -> Response:
    payment = await bus.handle(cmd.PayForBooking(actor, booking_id, body.payment_method))
    return json_answer(PaymentOut.model_validate(payment), 201)


@router.get(
    "/bookings/{booking_id}/tickets",
    summary="A paid booking's tickets and their codes",
    response_model=TicketList,
)
async def booking_tickets(booking_id: UUID, actor: CurrentActor, db: OneStatementRead) -> Response:
    tickets = await queries.tickets_of_booking(db, booking_id, actor)
    return json_answer(TicketList.model_validate({"items": tickets}))


def json_answer(model: BaseModel, status: int = 200) -> Response:
    """`model` as these routes answer it, and their direct routes too (api/direct_routes.py):
    validated once and serialized by pydantic, not again by the framework."""
    return Response(model.model_dump_json(), status, media_type="application/json")


@router.post(
    "/bookings/{booking_id}/refund",
    summary="Refund a paid booking; its tickets return to sale",
    responses={503: {"description": "Provider unavailable; retry after Retry-After"}},
    openapi_extra=IDEMPOTENCY_KEY_REQUIRED,
)
async def refund(booking_id: UUID, actor: CurrentActor, bus: Bus, db: ReadConnection) -> BookingOut:
    await bus.handle(cmd.RefundBooking(actor, booking_id))
    return BookingOut.model_validate(await queries.booking_detail(db, booking_id, actor))


# The route reads the raw body itself (the signature covers its bytes): documented here.
WEBHOOK_CONTRACT = {
    "parameters": [
        {
            "name": "Provider-Signature",
            "in": "header",
            "required": True,
            "description": "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "type", "data"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "data": {"type": "object"},
                    },
                }
            }
        },
    },
}


@router.post(
    "/payments/webhook",
    summary="The payment provider's callback (HMAC-signed)",
    responses={400: {"description": "Bad, stale or replayed signature, or not a provider event"}},
    openapi_extra=WEBHOOK_CONTRACT,
)
async def provider_webhook(request: Request, bus: Bus) -> dict[str, bool]:
    body = await request.body()
    settings = bus.deps.settings
    signature = request.headers.get("provider-signature", "")
    if not webhook_signing.verify(  # the scheme our own deliveries are signed with
        settings.payment_webhook_secret,
        body,
        signature,
        int(bus.deps.clock.now().timestamp()),
        settings.webhook_tolerance_seconds,
    ):
        raise BadSignature("The Provider-Signature header does not sign this body, or is stale.")
    try:
        event = json.loads(body)
        command = cmd.ApplyProviderEvent(str(event["id"]), str(event["type"]), dict(event["data"]))
    except (ValueError, KeyError, TypeError) as error:
        raise BadSignature("The callback body is not a provider event.") from error
    await bus.handle(command)
    return {"received": True}
