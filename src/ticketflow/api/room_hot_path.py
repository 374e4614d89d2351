"""A look at a waiting place (`GET /api/v1/events/{event_id}/queue/{ticket_id}`), served ahead
of the ordinary route (api/routes/waiting_room.py) as the booking hot path is: it is the
request a waiting room's crowd sends most (every waiting buyer's heartbeat, every few seconds).

In front of the ordinary route a look paid the framework more than the room: routing through
the nested routers and resolving the route's dependencies were ~65% of its CPU, the room's own
work ~5% (`python -m bench.profile_room --profile`). Here a signed-in caller's look runs the
same command and gives the same answer (tests/integration/test_room_hot_path.py compares them
byte for byte); anything else (no or a bad token; ids that are not UUIDs never match this
route) goes to the ordinary route, so the route, its documentation and its error answers stay
the one definition."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ticketflow.api.booking_hot_path import HotPathRoute, ordinary_route
from ticketflow.api.caller import looks_signed_in, request_caller
from ticketflow.api.errors import domain_problem
from ticketflow.api.waiting_room_schemas import PlaceOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import AuthenticationFailed, DomainError
from ticketflow.services.messagebus import MessageBus

PATH = "/api/v1/events/{event_id:uuid}/queue/{ticket_id:uuid}"


class _Look:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not looks_signed_in(scope):
            await ordinary_route(scope, receive, send)
            return
        bus: MessageBus = scope["app"].state.bus
        try:
            actor = await request_caller(bus, scope)
        except AuthenticationFailed:
            actor = None
        if actor is None:  # the route refuses it, as it documents
            await ordinary_route(scope, receive, send)
            return
        ids = scope["path_params"]
        try:
            place = await bus.handle(cmd.VisitPlace(actor, ids["event_id"], ids["ticket_id"]))
        except DomainError as refused:
            answer: Response = domain_problem(Request(scope), refused)
        else:
            answer = Response(PlaceOut.of(place).model_dump_json(), media_type="application/json")
        await answer(scope, receive, send)


def look_route() -> HotPathRoute:
    return HotPathRoute(PATH, _Look(), "GET")
