"""A log line is one JSON object whatever its fields hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

from ticketflow.logging_setup import _to_json


def test_a_line_renders_uuids_datetimes_and_non_string_keys() -> None:
    user = UUID("01a24ad5-9ba1-733f-b664-c10710d218b8")
    at = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    line = json.loads(_to_json({"event": "request", "user_id": user, "at": at, 7: "seven"}))
    assert line == {
        "event": "request",
        "user_id": str(user),
        "at": "2026-12-06T10:00:00+00:00",
        "7": "seven",
    }


def test_what_orjson_refuses_still_becomes_a_line() -> None:
    huge = 2**70  # past 64 bits: orjson raises, the standard library writes it
    assert json.loads(_to_json({"event": "big", "n": huge, "thing": object})) == {
        "event": "big",
        "n": huge,
        "thing": str(object),
    }
