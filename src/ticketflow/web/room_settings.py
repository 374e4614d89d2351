"""An event's waiting room as the organizer's pages take and show it: the form's text, the API
body it makes (api/schemas.py `WaitingRoomIn`), and the room as configured for the dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC
from typing import Any

from ticketflow.domain.waiting_room import AUTO, WaitingRoom
from ticketflow.web.forms import FieldErrors, NotANumber, local_input, utc_instant, whole_number

ROOM_FIELDS = ("enabled", "opens_at", "admit_per_minute", "session_minutes")
ROOM_PREFIX = "waiting_room."  # how the domain names the room's fields in its refusals
# What each field takes, said whatever the refusal: pydantic's words name types and bounds
# (a union's first), and a datetime-local can only be refused for not being a date and time.
FIELD_RULES = {
    "opens_at": "Enter a date and time (UTC), such as 2031-08-14T18:00.",
    "admit_per_minute": 'Enter a whole number from 1 to 1,000,000, or leave it empty for "auto".',
    "session_minutes": "Enter a whole number of minutes from 1 to 120.",
}


def configured_room(event: Mapping[str, Any]) -> WaitingRoom | None:
    """The event's waiting room as configured, on or off, its opening in UTC as our pages show
    times (the API takes any offset); None: never configured."""
    stored = event.get("waiting_room")
    if not stored:
        return None
    room = WaitingRoom.of(stored)
    return replace(room, opens_at=room.opens_at.astimezone(UTC)) if room.opens_at else room


def room_values(room: WaitingRoom | None) -> dict[str, str]:
    """The form's fields showing `room`; a room never configured shows off, with the defaults."""
    shown = room or WaitingRoom(enabled=False)
    return {
        "enabled": "on" if shown.enabled else "",
        "opens_at": local_input(shown.opens_at),
        "admit_per_minute": "" if shown.admit_per_minute is None else str(shown.admit_per_minute),
        "session_minutes": str(shown.session_minutes),
    }


def room_body(form: dict[str, str]) -> tuple[dict[str, Any], FieldErrors]:
    """The form as the API's `WaitingRoomIn` body, sent whole as the API takes it: turning the
    room off keeps what the form shows. An empty rate is "auto" (0 is not: it is refused)."""
    body: dict[str, Any] = {"enabled": bool(form["enabled"])}
    body["opens_at"] = utc_instant(form["opens_at"])
    errors: FieldErrors = {}
    try:
        rate = whole_number(form["admit_per_minute"])
        body["admit_per_minute"] = AUTO if rate is None else rate
    except NotANumber as wrong:
        errors["admit_per_minute"] = str(wrong)
    try:
        body["session_minutes"] = whole_number(form["session_minutes"])
    except NotANumber as wrong:
        errors["session_minutes"] = str(wrong)
    return body, errors


def said_plainly(errors: FieldErrors) -> FieldErrors:
    """The form's refusals, each field's saying what the field takes."""
    return {name: FIELD_RULES.get(name, text) for name, text in errors.items()}


def by_form_field(errors: FieldErrors) -> FieldErrors:
    """The domain's refusals next to the form's fields: its `waiting_room.opens_at` is
    `opens_at` (its words stay: they say which rule the value broke)."""
    return {name.removeprefix(ROOM_PREFIX): text for name, text in errors.items()}
