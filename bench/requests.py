"""What the load generator sends, and how each answer is judged (never by status code alone)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum

from bench.http import build_request

API = "/api/v1"


class Outcome(StrEnum):
    OK = "ok"  # 200 to a read
    HELD = "held"  # 201 to a booking: a pending hold
    SOLD_OUT = "sold_out"  # 409 not-enough-tickets to a booking
    ERROR = "error"  # any other answer, or the connection failed
    TIMEOUT = "timeout"  # no answer within the timeout


# The problem type our API gives a booking that can't get its tickets (DESIGN.md, errors.py).
SOLD_OUT_TYPE = b"urn:ticketflow:problem:not-enough-tickets"


@dataclass(frozen=True)
class HealthRequests:
    """GET /health: the cheapest endpoint, the ceiling of the HTTP stack."""

    def requests(self, share: int, of: int) -> RequestStream:
        return _Fixed([build_request("GET", "/health")], Outcome.OK)


@dataclass(frozen=True)
class BrowseRequests:
    """GET /events/{id} for `event_ids` in turn; every `list_every`-th request GET /events."""

    event_ids: tuple[str, ...]
    list_every: int = 5

    def requests(self, share: int, of: int) -> RequestStream:
        detail = [build_request("GET", f"{API}/events/{event_id}") for event_id in self.event_ids]
        listing = build_request("GET", f"{API}/events")
        mix = [listing if n % self.list_every == 0 else detail[n % len(detail)] for n in range(60)]
        return _Fixed(mix, Outcome.OK)


@dataclass(frozen=True)
class EventPageRequests:
    """GET /events/{id}, the public web page, for `event_ids` in turn: anonymous, as a crowd
    opens it."""

    event_ids: tuple[str, ...]

    def requests(self, share: int, of: int) -> RequestStream:
        pages = [build_request("GET", f"/events/{event_id}") for event_id in self.event_ids]
        return _Fixed(pages, Outcome.OK)


@dataclass(frozen=True)
class LookRequests:
    """GET /events/{id}/queue/{ticket_id}: each waiting place looked at by its owner in turn
    (a waiting room's heartbeat, the request its crowd sends most)."""

    event_id: str
    places: tuple[tuple[str, str], ...]  # (owner's access token, ticket id)

    def requests(self, share: int, of: int) -> RequestStream:
        looks = [
            build_request(
                "GET",
                f"{API}/events/{self.event_id}/queue/{ticket_id}",
                {"Authorization": f"Bearer {token}"},
            )
            for token, ticket_id in self.places[share::of]
        ]
        return _Fixed(looks, Outcome.OK)


@dataclass(frozen=True)
class BookingRequests:
    """POST /bookings of `quantity` on one ticket type, buyer tokens in turn; with
    `idempotency_keys`, each request has a fresh key, as a real client retrying safely would."""

    event_id: str
    ticket_type_id: str
    tokens: tuple[str, ...]
    quantity: int = 1
    idempotency_keys: bool = True

    def requests(self, share: int, of: int) -> RequestStream:
        """The stream of worker `share` of `of`: its own slice of the buyers."""
        return _Bookings(self, self.tokens[share::of])


class RequestStream:
    """Endless requests for one worker; `judge` turns an answer into an outcome."""

    def next(self) -> bytes:
        raise NotImplementedError

    def judge(self, status: int, body: bytes) -> Outcome:
        raise NotImplementedError


class _Fixed(RequestStream):
    def __init__(self, requests: list[bytes], success: Outcome) -> None:
        self._requests = requests
        self._success = success
        self._index = 0

    def next(self) -> bytes:
        self._index += 1
        return self._requests[self._index % len(self._requests)]

    def judge(self, status: int, body: bytes) -> Outcome:
        return self._success if status == 200 else Outcome.ERROR


class _Bookings(RequestStream):
    def __init__(self, spec: BookingRequests, tokens: tuple[str, ...]) -> None:
        body = json.dumps(
            {
                "event_id": spec.event_id,
                "lines": [{"ticket_type_id": spec.ticket_type_id, "quantity": spec.quantity}],
            }
        ).encode()
        # Everything but the key is built once; a request is three bytes objects joined.
        self._parts = []
        for token in tokens:
            head = build_request(
                "POST", f"{API}/bookings", {"Authorization": f"Bearer {token}"}, body
            )
            split = head.index(b"\r\n") + 2
            self._parts.append((head[:split], head[split:]))
        self._keys = spec.idempotency_keys
        self._key_prefix = uuid.uuid4().hex[:12]
        self._index = -1

    @property
    def buyers(self) -> int:
        return len(self._parts)

    def next(self) -> bytes:
        self._index += 1
        first_line, rest = self._parts[self._index % len(self._parts)]
        if not self._keys:
            return first_line + rest
        key = f"Idempotency-Key: bench-{self._key_prefix}-{self._index}\r\n".encode()
        return first_line + key + rest

    def judge(self, status: int, body: bytes) -> Outcome:
        if status == 201 and b'"status":"pending"' in body:
            return Outcome.HELD
        if status == 409 and SOLD_OUT_TYPE in body:
            return Outcome.SOLD_OUT
        return Outcome.ERROR


def booking_id(body: bytes) -> str:
    """The id in a 201 booking answer (parsed after the run, off the clock)."""
    return str(json.loads(body)["id"])
