"""A log line is one JSON object whatever its fields hold."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog

from ticketflow.logging_setup import _to_json, access_line, configure_logging
from ticketflow.request_context import Caller, current_caller, current_request_id


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


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_access_line_has_the_fields_and_form_of_every_other_line() -> None:
    """The per-request line skips structlog's chain (a sixth of a cached read): what it writes
    must still read like the chain's own lines, the request's context included."""
    stream = io.StringIO()
    user = UUID("01a24ad5-9ba1-733f-b664-c10710d218b8")
    caller = Caller()
    caller.user_id = user
    id_token, caller_token = current_request_id.set("r-1"), current_caller.set(caller)
    try:
        configure_logging("json", "info", stream=stream)
        structlog.get_logger().info("request", method="GET", route="/x", path="/x")
        access_line()("GET", "/events/{event_id}", "/events/7", 200, 1.25)
    finally:
        current_caller.reset(caller_token)
        current_request_id.reset(id_token)
        configure_logging()

    chained, direct = _lines(stream)
    assert direct == {
        "event": "request",
        "request_id": "r-1",
        "user_id": str(user),
        "method": "GET",
        "route": "/events/{event_id}",
        "path": "/events/7",
        "status": 200,
        "duration_ms": 1.25,
        "level": "info",
        "timestamp": direct["timestamp"],
    }
    assert set(direct) == set(chained) | {"status", "duration_ms"}
    stamped = datetime.fromisoformat(direct["timestamp"])
    assert direct["timestamp"].endswith("Z") and stamped.tzinfo is not None
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60


def test_access_lines_follow_the_level_and_the_format() -> None:
    quiet, console = io.StringIO(), io.StringIO()
    try:
        configure_logging("json", "warning", stream=quiet)
        access_line()("GET", "/health", "/health", 200, 0.5)
        configure_logging("console", "info", stream=console)
        access_line()("GET", "/health", "/health", 503, 0.5)
    finally:
        configure_logging()
    assert quiet.getvalue() == ""
    readable = re.sub(r"\x1b\[[0-9;]*m", "", console.getvalue())  # without its colours
    assert " request " in readable and "status=503" in readable
