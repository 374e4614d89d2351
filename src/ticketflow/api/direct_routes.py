"""The requests crowds send most, served ahead of the framework as the booking hot path is
(api/booking_hot_path.py): a look at a waiting place (`GET /api/v1/events/{event_id}/queue/
{ticket_id}`, every waiting buyer's heartbeat, every few seconds), a join (`POST
/api/v1/events/{event_id}/queue`, what a whole crowd sends when an on-sale is announced), and the
public catalog reads (`GET /api/v1/events/{event_id}`, `GET /api/v1/events` without a query)
and the event's web page (`GET /events/{event_id}`), what everyone browsing sends; and a buyer's
payment (`POST /api/v1/bookings/{booking_id}/payments`) and tickets (`GET .../tickets`), the
last steps of every paid visit. The payment runs under its Idempotency-Key as before: the
middleware wraps every route, direct or not (api/idempotency.py).

In front of their ordinary routes these requests paid the framework more than their own work:
routing through the nested routers (FastAPI 0.165 walks every included router and every route
of it, setting and restoring its scope keys for each) and resolving the route's dependencies
were ~65% of a look's CPU, the room's own work ~5% (`python -m bench.profile_room --profile`).
Here each is answered by the same code (the catalog reads, the tickets and the payment call
their route's own function) with the same answer (tests/integration/test_direct_routes.py
compares them byte for byte); anything else goes to the ordinary route (`HandOn`), so the routes,
their documentation and their error answers stay the one definition: no or a bad token where one
is needed, a query string on the list (its parameters are the route's to validate), a body that
is not valid JSON for the route's model, ids that are not UUIDs (they never match).
All of them run inside every middleware (load shedding, limits, idempotency, access log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ticketflow.adapters.db import one_statement_read
from ticketflow.api.booking_hot_path import HotPathRoute, ordinary_route
from ticketflow.api.caller import looks_signed_in, request_caller
from ticketflow.api.errors import domain_problem
from ticketflow.api.idempotency import claimed_key, read_body, replaying
from ticketflow.api.routes.events import catalog_read, get_event, list_events
from ticketflow.api.routes.payments import booking_tickets, json_answer, pay
from ticketflow.api.schemas import PaymentIn
from ticketflow.api.waiting_room_schemas import PlaceOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import AuthenticationFailed, DomainError
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.services.waiting_rooms import PlaceView
from ticketflow.web.shop import event_page

EVENTS = "/api/v1/events"
EVENT = f"{EVENTS}/{{event_id:uuid}}"
JOIN = f"{EVENT}/queue"
LOOK = f"{JOIN}/{{ticket_id:uuid}}"
EVENT_PAGE = "/events/{event_id:uuid}"
BOOKING = "/api/v1/bookings/{booking_id:uuid}"
TICKETS = f"{BOOKING}/tickets"
PAY = f"{BOOKING}/payments"

# An answer gets the request's scope and its body (a POST's; b"" for a GET).
Answer = Callable[[Scope, bytes], Awaitable[Response]]


class HandOn(Exception):
    """The ordinary route answers this request: it explains what is wrong with it, or serves
    what the direct route does not."""


class _Direct:
    """A route's ASGI app: `answer`, or the ordinary route's; a domain refusal answered as the
    API's error handler answers it, or (`page`) by the ordinary route, which renders its page."""

    def __init__(self, answer: Answer, *, page: bool = False) -> None:
        self._answer, self._page = answer, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        if scope["method"] == "POST":  # read here, to be handed again to the ordinary route
            body = await read_body(receive)
            receive = replaying(body)
        try:
            response = await self._answer(scope, body)
        except (HandOn, AuthenticationFailed):  # the route refuses a bad token as it documents
            await ordinary_route(scope, receive, send)
            return
        except DomainError as refused:
            if self._page:
                await ordinary_route(scope, receive, send)
                return
            response = domain_problem(Request(scope), refused)
        await response(scope, receive, send)


async def _signed_in(scope: Scope) -> tuple[MessageBus, Actor]:
    if not looks_signed_in(scope):
        raise HandOn
    bus: MessageBus = scope["app"].state.bus
    actor = await request_caller(bus, scope)
    if actor is None:
        raise HandOn
    return bus, actor


def _place(place: PlaceView) -> Response:
    return json_answer(PlaceOut.of(place))


async def _look(scope: Scope, _: bytes) -> Response:
    bus, actor = await _signed_in(scope)
    ids = scope["path_params"]
    return _place(await bus.handle(cmd.VisitPlace(actor, ids["event_id"], ids["ticket_id"])))


async def _join(scope: Scope, _: bytes) -> Response:
    bus, actor = await _signed_in(scope)
    joining = cmd.JoinWaitingRoom(actor, scope["path_params"]["event_id"])
    return _place(await bus.for_request(claimed_key(scope)).handle(joining))


def _if_none_match(scope: Scope) -> str | None:
    return Headers(scope=scope).get("if-none-match")


async def _event(scope: Scope, _: bytes) -> Response:
    read = await catalog_read(Request(scope))
    return await get_event(scope["path_params"]["event_id"], read, _if_none_match(scope))


async def _events(scope: Scope, _: bytes) -> Response:
    if scope["query_string"]:
        raise HandOn
    read = await catalog_read(Request(scope))
    answer = await list_events(read, Response(), None, DEFAULT_LIMIT, False, _if_none_match(scope))
    if not isinstance(answer, Response):  # only a caller's own list is a model
        raise HandOn
    return answer


async def _event_page(scope: Scope, _: bytes) -> Response:
    return await event_page(Request(scope), scope["path_params"]["event_id"])


async def _tickets(scope: Scope, _: bytes) -> Response:
    bus, actor = await _signed_in(scope)
    async with one_statement_read(bus.engine) as db:
        return await booking_tickets(scope["path_params"]["booking_id"], actor, db)


async def _pay(scope: Scope, body: bytes) -> Response:
    """Run under the request's Idempotency-Key by the middleware, as the route is: a missing
    key is refused there, a repeat answered from the first, the key claimed spent by this
    payment's commit (`claimed_key`)."""
    bus, actor = await _signed_in(scope)
    if not Headers(scope=scope).get("content-type", "").startswith("application/json"):
        raise HandOn
    try:  # parsed and validated in one pass by pydantic-core
        wanted = PaymentIn.model_validate_json(body)
    except ValidationError:
        raise HandOn from None
    paying = bus.for_request(claimed_key(scope))
    return await pay(scope["path_params"]["booking_id"], wanted, actor, paying)


def direct_routes() -> list[HotPathRoute]:
    """Registered by api/app.py ahead of every ordinary route."""
    return [
        HotPathRoute(LOOK, _Direct(_look), "GET"),
        HotPathRoute(JOIN, _Direct(_join), "POST"),
        HotPathRoute(EVENT, _Direct(_event), "GET"),
        HotPathRoute(EVENTS, _Direct(_events), "GET"),
        HotPathRoute(EVENT_PAGE, _Direct(_event_page, page=True), "GET"),
        HotPathRoute(TICKETS, _Direct(_tickets), "GET"),
        HotPathRoute(PAY, _Direct(_pay), "POST"),
    ]
