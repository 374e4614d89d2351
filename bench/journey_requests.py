"""A buyer's visit, request by request: what the `journey` phase sends, and the answer each step
expects. Answers are judged on their bytes; the only thing parsed is a held booking's id, which
the next step (paying) needs."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from enum import StrEnum

from bench.http import Answer
from bench.requests import API

# Any method the sandbox does not list as declined succeeds (payment_provider/ledger.py).
PAYMENT_METHOD = "pm_card_visa"
QUANTITIES = (1, 2)  # a hold asks for one of these, at random
HOST = b"Host: 127.0.0.1\r\n"
JSON = b"Content-Type: application/json\r\n"
# BookingOut's first field is the booking's id: its 36 characters follow this.
ID_FIRST = b'{"id":"'
UUID_LENGTH = 36


class Route(StrEnum):
    LIST = "list"  # GET /events
    EVENT = "event"  # GET /events/{id}
    HOLD = "hold"  # POST /bookings
    PAY = "pay"  # POST /bookings/{id}/payments
    TICKETS = "tickets"  # GET /bookings/{id}/tickets


@dataclass(frozen=True)
class JourneyPlan:
    """The visit every user loops on, and the shape of the load."""

    event_ids: tuple[str, ...]
    ticket_type_ids: tuple[str, ...]  # each event's one ticket type, in the same order
    tokens: tuple[str, ...]  # user n is buyer n (modulo, if there are more users than buyers)
    users: int
    ramp: float  # seconds over which the users start, evenly spread
    duration: float  # seconds from the first user's start; nothing is sent after
    think: tuple[float, float]  # seconds between a user's answer and its next request
    pay_share: float  # of the holds, the share paid for

    def starts_after(self, user: int) -> float:
        """When user `user` starts, in seconds after the first one."""
        return user * self.ramp / self.users

    def token_of(self, user: int) -> str:
        return self.tokens[user % len(self.tokens)]


class VisitRequests:
    """The requests' bytes: paths and bodies built once; each request joins a few parts."""

    def __init__(self, plan: JourneyPlan) -> None:
        self._listing = f"GET {API}/events HTTP/1.1\r\n".encode()
        self._events = [
            f"GET {API}/events/{event} HTTP/1.1\r\n".encode() for event in plan.event_ids
        ]
        self._holds = [
            {quantity: _hold_body(event, ticket_type, quantity) for quantity in QUANTITIES}
            for event, ticket_type in zip(plan.event_ids, plan.ticket_type_ids, strict=True)
        ]
        self._payment = json.dumps({"payment_method": PAYMENT_METHOD}).encode()
        self._key_prefix = f"journey-{uuid.uuid4().hex[:12]}-".encode()
        self._keys = 0

    @staticmethod
    def auth(token: str) -> bytes:
        return f"Authorization: Bearer {token}\r\n".encode()

    def listing(self, auth: bytes) -> bytes:
        return self._listing + HOST + auth + b"\r\n"

    def event(self, event: int, auth: bytes) -> bytes:
        return self._events[event] + HOST + auth + b"\r\n"

    def hold(self, event: int, quantity: int, auth: bytes) -> bytes:
        return self._post(b"/bookings", auth, self._holds[event][quantity])

    def pay(self, booking: bytes, auth: bytes) -> bytes:
        return self._post(b"/bookings/" + booking + b"/payments", auth, self._payment)

    def tickets(self, booking: bytes, auth: bytes) -> bytes:
        path = API.encode() + b"/bookings/" + booking + b"/tickets"
        return b"GET " + path + b" HTTP/1.1\r\n" + HOST + auth + b"\r\n"

    def _post(self, path: bytes, auth: bytes, body: bytes) -> bytes:
        self._keys += 1  # a fresh Idempotency-Key per request, as a client retrying safely sends
        key = b"Idempotency-Key: %s%d\r\n" % (self._key_prefix, self._keys)
        length = b"Content-Length: %d\r\n\r\n" % len(body)
        first_line = b"POST " + API.encode() + path + b" HTTP/1.1\r\n"
        return first_line + HOST + auth + key + JSON + length + body


def _hold_body(event: str, ticket_type: str, quantity: int) -> bytes:
    lines = [{"ticket_type_id": ticket_type, "quantity": quantity}]
    return json.dumps({"event_id": event, "lines": lines}).encode()


def judge(route: Route, answer: Answer | None, quantity: int) -> tuple[bool, bytes]:
    """Whether `answer` (None: there was none) is the one `route` expects; for a hold, also
    the booking it holds."""
    if answer is None:
        return False, b""
    if route is Route.HOLD:
        booking = held_booking(answer)
        return booking is not None, booking or b""
    if route is Route.PAY:
        return paid(answer), b""
    if route is Route.TICKETS:
        return tickets_issued(answer, quantity), b""
    return answer.status == 200, b""


def next_route(route: Route, ok: bool, paying: bool) -> Route:
    """The step after `route`: a failed hold starts the visit over, a failed payment skips the
    tickets; the pages lead on whatever they answered, as a JMeter thread goes on."""
    if route is Route.LIST:
        return Route.EVENT
    if route is Route.EVENT:
        return Route.HOLD
    if route is Route.HOLD:
        return Route.PAY if ok and paying else Route.LIST
    if route is Route.PAY:
        return Route.TICKETS if ok else Route.LIST
    return Route.LIST


def held_booking(answer: Answer) -> bytes | None:
    """The booking id of a 201 pending hold; None for any other answer."""
    if answer.status != 201 or b'"status":"pending"' not in answer.body:
        return None
    if answer.body.startswith(ID_FIRST):
        return answer.body[len(ID_FIRST) : len(ID_FIRST) + UUID_LENGTH]
    return str(json.loads(answer.body)["id"]).encode()  # the fields moved: slower, still right


def paid(answer: Answer) -> bool:
    return answer.status == 201 and b'"status":"succeeded"' in answer.body


def tickets_issued(answer: Answer, quantity: int) -> bool:
    """200 with one ticket per seat held."""
    return answer.status == 200 and answer.body.count(b'"code":') == quantity
