"""Stored bodies: availability laid into the stored JSON gives exactly the bytes the response model
renders, whatever the text fields hold; and If-None-Match is compared as RFC 9110 says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ticketflow.api.http_caching import etag_matches
from ticketflow.api.schemas import EventOut, EventPage
from ticketflow.api.stored_bodies import StoredBody
from ticketflow.services.pagination import Page

STARTS = datetime(2026, 7, 1, 20, 0, tzinfo=UTC)


def event_row(
    title: str = "Flash Sale Night", totals: tuple[int, ...] = (100, 50)
) -> dict[str, Any]:
    event_id = uuid.uuid4()
    return {
        "id": event_id,
        "organizer_id": uuid.uuid4(),
        "title": title,
        "description": 'Say "available":-1, or \u00e9t\u00e9 \U0001f3ab',
        "venue": "Hall A",
        "starts_at": STARTS,
        "ends_at": STARTS + timedelta(hours=3),
        "sales_start": None,
        "sales_end": None,
        "max_tickets_per_buyer": 10,
        "refund_deadline": None,
        "status": "published",
        "created_at": STARTS - timedelta(days=30),
        "ticket_types": [
            {
                "id": uuid.uuid4(),
                "event_id": event_id,
                "name": f"Tier {index}",
                "price_minor": 1000,
                "currency": "EUR",
                "total": total,
                "available": total,
                "max_per_booking": 10,
                "max_per_buyer": 4 if index else None,
            }
            for index, total in enumerate(totals)
        ],
    }


def rendered(row: dict[str, Any], live: dict[uuid.UUID, int]) -> bytes:
    """What the response model makes of the row with that availability."""
    types = [{**tt, "available": live.get(tt["id"], tt["available"])} for tt in row["ticket_types"]]
    return EventOut.model_validate({**row, "ticket_types": types}).model_dump_json().encode()


@pytest.mark.parametrize("title", ["Plain", '"available":-1', 'x\\"available\\":-1', "\u2028"])
def test_a_filled_event_is_what_the_model_renders_byte_for_byte(title: str) -> None:
    row = event_row(title)
    first, second = (tt["id"] for tt in row["ticket_types"])
    stored = StoredBody.of_event(row)
    for live in ({first: 7, second: 0}, {first: 100}, {}):
        body, _ = stored.filled((live,))
        assert body == rendered(row, live)


def test_the_etag_changes_with_availability_and_holds_while_it_does_not() -> None:
    row = event_row()
    first = row["ticket_types"][0]["id"]
    stored = StoredBody.of_event(row)
    live = {first: 7}
    body, etag = stored.filled((live,))
    assert stored.filled((live,)) == (body, etag)
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    _, changed = stored.filled(({first: 6},))
    assert changed != etag
    assert stored.filled(({first: 7},))[1] == etag  # the same bytes, the same ETag


def test_a_filled_page_lays_each_events_availability_into_its_own_ticket_types() -> None:
    rows = [event_row(totals=(10,)), event_row(totals=(20, 30))]
    lives = [{rows[0]["ticket_types"][0]["id"]: 1}, {rows[1]["ticket_types"][1]["id"]: 2}]
    body, _ = StoredBody.of_page(Page(rows, "next")).filled(lives)
    items = [
        {
            **row,
            "ticket_types": [
                {**tt, "available": live.get(tt["id"], tt["available"])}
                for tt in row["ticket_types"]
            ],
        }
        for row, live in zip(rows, lives, strict=True)
    ]
    expected = EventPage.model_validate({"items": items, "next_cursor": "next"})
    assert body == expected.model_dump_json().encode()


@pytest.mark.parametrize(
    ("if_none_match", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly
        ('"old", "abc"', True),
        ("*", True),
        ('"old"', False),
        ("abc", False),  # unquoted: not our tag
        ("", False),
    ],
)
def test_if_none_match_is_compared_as_rfc_9110_says(if_none_match: str, matches: bool) -> None:
    assert etag_matches(if_none_match, '"abc"') is matches
