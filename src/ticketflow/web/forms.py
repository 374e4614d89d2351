"""Forms of the organizer and admin pages, checked by the API's own request bodies
(api/schemas.py): a page accepts exactly what the API accepts. A form is text; this turns it
into what those bodies take (UTC instants, minor units, numbers) and their refusals into a
message per field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ticketflow.domain.errors import DomainError
from ticketflow.web.formatting import NO_MINOR_UNIT

Model = TypeVar("Model", bound=BaseModel)
FieldErrors = dict[str, str]  # field name -> what is wrong with it; "" for the whole form
GENERAL = ""
# Pydantic's words where they would show a user a regular expression or a type name.
_PLAINER = {
    "string_pattern_mismatch": "This is not in the form it should be.",
    "int_type": "Enter a whole number.",
    "datetime_type": "Enter a date and time.",
    "too_short": "Choose at least one.",
    "string_too_short": "Fill this in.",
}
# What <input type="datetime-local"> sends: no offset. The forms say it is UTC.
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


async def form_fields(request: Request, *names: str) -> dict[str, str]:
    """The named fields as sent (a missing one is empty), their text stripped."""
    sent = await request.form()
    return {name: str(sent.get(name) or "").strip() for name in names}


def utc_instant(text: str) -> str | None:
    """A datetime-local value as an RFC 3339 UTC instant; empty: None; anything else as is,
    for the body's check to refuse."""
    if not text:
        return None
    return f"{text}+00:00" if _LOCAL_DATETIME.match(text) else text


def local_input(moment: datetime | None) -> str:
    """An instant as a datetime-local input shows it, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""


class NotANumber(ValueError):
    pass


def whole_number(text: str) -> int | None:
    if not text:
        return None
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise NotANumber("Enter a whole number.")
    return int(text)


def minor_units(price: str, currency: str) -> int:
    """'12.50' EUR -> 1250; '1500' JPY -> 1500."""
    digits = 0 if currency.upper() in NO_MINOR_UNIT else 2
    try:
        amount = Decimal(price.replace(",", ""))
    except InvalidOperation as error:
        raise NotANumber("Enter a price such as 12.50.") from error
    minor = amount.scaleb(digits)
    if not amount.is_finite() or minor != minor.to_integral_value():
        raise NotANumber(f"Enter a price with at most {digits} decimals.")
    return int(minor)


def price_text(minor: int, currency: str) -> str:
    return str(minor) if currency.upper() in NO_MINOR_UNIT else f"{minor / 100:.2f}"


def checked(
    model: type[Model], body: dict[str, Any], errors: FieldErrors | None = None
) -> Model | FieldErrors:
    """`body` as the API's `model`; or what is wrong with it, per field, with the `errors`
    found while turning the form's text into `body`."""
    found: FieldErrors = {}
    try:
        valid = model.model_validate(body)
    except ValidationError as invalid:
        for issue in invalid.errors(include_url=False):
            field = str(issue["loc"][0]) if issue["loc"] else GENERAL
            message = issue["msg"].removeprefix("Value error, ")
            found.setdefault(field, _PLAINER.get(issue["type"], message))
    found.update(errors or {})
    return found or valid


def refusal_errors(refusal: DomainError) -> FieldErrors:
    """A refusal of the domain, said next to the field it names (or above the form)."""
    return {refusal.field or GENERAL: refusal.detail}
