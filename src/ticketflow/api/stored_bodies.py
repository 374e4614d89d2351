"""The public catalog's answers kept as JSON bytes, with availability laid in without parsing.

An event (or a page of events) is rendered through its response model once per change of its
row, with a gap where each ticket type's `available` goes. An answer fills the gaps with the
availability kept in this process (services/catalog_views.py) and sends those bytes: a hit costs
no model validation and no serialization. The filled body and its ETag are kept until the row or
one of the availabilities it was filled from is another object (they are renewed as new objects
only when their value changed, adapters/process_copies.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from ticketflow.api.schemas import EventOut, EventPage
from ticketflow.services.pagination import Page

Row = dict[str, Any]
Availability = Mapping[UUID, int]
GAP = -1  # never a count of tickets left: rendered where each `available` goes
GAP_JSON = b'"available":-1'
KEY_JSON = b'"available":'
MAX_STORED = 10_000


class StoredBody:
    """JSON bytes with gaps; `filled` lays availability into them."""

    def __init__(self, model: BaseModel, slots: list[tuple[int, UUID, int]]) -> None:
        parts = model.model_dump_json().encode().split(GAP_JSON)
        # A key inside a JSON string has its quotes escaped: each match is a ticket type's.
        assert len(parts) == len(slots) + 1, "every ticket type has exactly one gap"
        self._fragments = [part + KEY_JSON for part in parts[:-1]] + parts[-1:]
        # Per gap: which of the availabilities fills it, for which ticket type, and the row's
        # own count should that availability not know the ticket type (added since).
        self._slots = slots
        self._filled_from: tuple[Availability, ...] | None = None  # none filled yet
        self._filled = (b"", "")

    @classmethod
    def of_event(cls, row: Row) -> StoredBody:
        slots = [(0, tt["id"], tt["available"]) for tt in row["ticket_types"]]
        return cls(EventOut.model_validate(_with_gaps(row)), slots)

    @classmethod
    def of_page(cls, page: Page[Row]) -> StoredBody:
        slots = [
            (index, tt["id"], tt["available"])
            for index, row in enumerate(page.items)
            for tt in row["ticket_types"]
        ]
        items = [_with_gaps(row) for row in page.items]
        return cls(
            EventPage.model_validate({"items": items, "next_cursor": page.next_cursor}), slots
        )

    def filled(self, availabilities: Sequence[Availability]) -> tuple[bytes, str]:
        """The body with `availabilities[i]` laid into event i's ticket types, and its strong
        ETag (a hash of exactly these bytes)."""
        last = self._filled_from
        if (
            last is not None
            and len(availabilities) == len(last)
            and all(now is then for now, then in zip(availabilities, last, strict=True))
        ):
            return self._filled
        parts = [self._fragments[0]]
        for (source, ticket_type, own), fragment in zip(
            self._slots, self._fragments[1:], strict=True
        ):
            parts += (b"%d" % availabilities[source].get(ticket_type, own), fragment)
        body = b"".join(parts)
        etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
        self._filled_from, self._filled = tuple(availabilities), (body, etag)
        return body, etag


class StoredBodies:
    """This process's stored bodies: of each event, and of each page, for the row (or page)
    object they were rendered from; a renewed copy that changed is another object."""

    def __init__(self) -> None:
        self._events: dict[UUID, tuple[Row, StoredBody]] = {}
        self._pages: dict[object, tuple[Page[Row], StoredBody]] = {}

    def of_event(self, row: Row) -> StoredBody:
        stored = self._events.get(row["id"])
        if stored is None or stored[0] is not row:
            stored = (row, StoredBody.of_event(row))
            _bounded(self._events)[row["id"]] = stored
        return stored[1]

    def of_page(self, key: object, page: Page[Row]) -> StoredBody:
        stored = self._pages.get(key)
        if stored is None or stored[0] is not page:
            stored = (page, StoredBody.of_page(page))
            _bounded(self._pages)[key] = stored
        return stored[1]


def _bounded(stored: dict[Any, Any]) -> dict[Any, Any]:
    if len(stored) >= MAX_STORED:  # a bound, not an eviction policy: events are few
        stored.clear()
    return stored


def _with_gaps(row: Row) -> Row:
    return {**row, "ticket_types": [{**tt, "available": GAP} for tt in row["ticket_types"]]}
