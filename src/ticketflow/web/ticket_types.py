"""The organizer's ticket type forms: add one to an event, change one (its total too)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from starlette.responses import Response

from ticketflow.api.schemas import TicketTypeIn, TicketTypePatch
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import Conflict, InvalidInput, NotFound
from ticketflow.web.forms import (
    FieldErrors,
    NotANumber,
    checked,
    form_fields,
    minor_units,
    price_text,
    refusal_errors,
    whole_number,
)
from ticketflow.web.organizer import Manager, own_event
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FIELDS = ("name", "price", "currency", "total", "max_per_booking", "max_per_buyer")
NUMBERS = ("total", "max_per_booking", "max_per_buyer")


def _ticket_type_body(form: dict[str, str]) -> tuple[dict[str, Any], FieldErrors]:
    body: dict[str, Any] = {"name": form["name"], "currency": form["currency"]}
    errors: FieldErrors = {}
    try:
        body["price_minor"] = minor_units(form["price"], form["currency"])
    except NotANumber as wrong:
        errors["price"] = str(wrong)
    for name in NUMBERS:
        try:
            body[name] = whole_number(form[name])
        except NotANumber as wrong:
            errors[name] = str(wrong)
    return body, errors


def _by_form_field(errors: FieldErrors) -> FieldErrors:
    """The body's `price_minor` is the form's `price`."""
    return {("price" if name == "price_minor" else name): text for name, text in errors.items()}


async def _form(
    request: Request,
    event: dict[str, Any],
    values: dict[str, Any],
    errors: FieldErrors,
    ticket_type: dict[str, Any] | None = None,
) -> Response:
    return await private_page(
        request,
        "organizer/ticket_type_form.html",
        422 if errors else 200,
        event=event,
        values=values,
        errors=_by_form_field(errors),
        ticket_type=ticket_type,
    )


def _ticket_type(event: dict[str, Any], ticket_type_id: UUID) -> dict[str, Any]:
    for ticket_type in event["ticket_types"]:
        if ticket_type["id"] == ticket_type_id:
            found: dict[str, Any] = ticket_type
            return found
    raise NotFound("No such ticket type.")


@router.get("/organizer/events/{event_id}/ticket-types/new")
async def new_ticket_type_form(request: Request, event_id: UUID, manager: Manager) -> Response:
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    return await _form(request, event, {"currency": "EUR", "max_per_booking": "10"}, {})


@router.post("/organizer/events/{event_id}/ticket-types")
async def add_ticket_type(request: Request, event_id: UUID, manager: Manager) -> Response:
    form = await form_fields(request, *FIELDS)
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    valid = checked(TicketTypeIn, *_ticket_type_body(form))
    if isinstance(valid, dict):
        return await _form(request, event, form, valid)
    command = cmd.AddTicketType(actor=manager.actor, event_id=event_id, **valid.model_dump())
    try:
        await bus_of(request).handle(command)
    except (InvalidInput, Conflict) as refusal:
        return await _form(request, event, form, refusal_errors(refusal))
    return see_other(f"/organizer/events/{event_id}")


@router.get("/organizer/events/{event_id}/ticket-types/{ticket_type_id}/edit")
async def edit_ticket_type_form(
    request: Request, event_id: UUID, ticket_type_id: UUID, manager: Manager
) -> Response:
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    ticket_type = _ticket_type(event, ticket_type_id)
    values = {name: str(ticket_type[name] or "") for name in ("name", "currency", *NUMBERS)}
    values["price"] = price_text(ticket_type["price_minor"], ticket_type["currency"])
    return await _form(request, event, values, {}, ticket_type)


@router.post("/organizer/events/{event_id}/ticket-types/{ticket_type_id}/edit")
async def edit_ticket_type(
    request: Request, event_id: UUID, ticket_type_id: UUID, manager: Manager
) -> Response:
    form = await form_fields(request, *FIELDS)
    async with bus_of(request).engine.connect() as db:
        event = await own_event(db, event_id, manager.actor)
    ticket_type = _ticket_type(event, ticket_type_id)
    valid = checked(TicketTypePatch, *_ticket_type_body(form))
    if isinstance(valid, dict):
        return await _form(request, event, form, valid, ticket_type)
    try:
        await bus_of(request).handle(
            cmd.UpdateTicketType(manager.actor, ticket_type_id, valid.changes())
        )
    except (InvalidInput, Conflict) as refusal:
        return await _form(request, event, form, refusal_errors(refusal), ticket_type)
    return see_other(f"/organizer/events/{event_id}")
