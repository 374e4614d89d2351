"""The order form's rules as pure functions: what each quantity picker may offer a buyer, and
the lines a sent form asks for. The domain decides again when the hold is made; these only keep
a buyer from choosing what would be refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from starlette.datastructures import FormData

from ticketflow.domain.errors import InvalidInput

FIELD_PREFIX = "qty-"
MAX_QUANTITY_FIELD = 1000  # no ticket type sells more to one booking


@dataclass(frozen=True)
class Choice:
    ticket_type: Mapping[str, Any]
    available: int
    most: int  # the picker's maximum: 0 when the buyer can't have any now

    @property
    def field(self) -> str:
        return f"{FIELD_PREFIX}{self.ticket_type['id']}"


def order_choices(
    event: Mapping[str, Any], available: Mapping[UUID, int], held: Mapping[UUID, int]
) -> list[Choice]:
    """Per ticket type: no more than one booking may take, than are left, nor than the event's
    and the type's caps on one buyer leave to this buyer (who holds or owns `held`)."""
    event_cap = event.get("max_tickets_per_buyer")
    event_left = None if event_cap is None else max(0, event_cap - sum(held.values()))
    choices = []
    for ticket_type in event["ticket_types"]:
        left = available.get(ticket_type["id"], ticket_type["available"])
        bounds = [ticket_type["max_per_booking"], left]
        if event_left is not None:
            bounds.append(event_left)
        if (type_cap := ticket_type.get("max_per_buyer")) is not None:
            bounds.append(max(0, type_cap - held.get(ticket_type["id"], 0)))
        choices.append(Choice(ticket_type, left, max(0, min(bounds))))
    return choices


def asked_lines(form: FormData) -> dict[UUID, int]:
    """(ticket type, quantity) of every picker above zero; InvalidInput if a quantity is not a
    whole number from 0 up, or none is above zero."""
    lines: dict[UUID, int] = {}
    for name, value in form.multi_items():
        if not name.startswith(FIELD_PREFIX) or not isinstance(value, str):
            continue
        try:
            ticket_type_id = UUID(name.removeprefix(FIELD_PREFIX))
            quantity = int(value or "0")
        except ValueError as error:
            raise InvalidInput("Quantities are whole numbers.", field="quantity") from error
        if not 0 <= quantity <= MAX_QUANTITY_FIELD:
            raise InvalidInput(
                f"Choose between 0 and {MAX_QUANTITY_FIELD} tickets.", field="quantity"
            )
        if quantity:
            lines[ticket_type_id] = quantity
    if not lines:
        raise InvalidInput("Choose at least one ticket.", field="quantity")
    return lines
