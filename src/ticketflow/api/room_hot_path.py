"""A look at a waiting place (`GET /api/v1/events/{event_id}/queue/{ticket_id}`) and a join
(`POST /api/v1/events/{event_id}/queue`), served ahead of the ordinary routes
(api/routes/waiting_room.py) as the booking hot path is: a look is the request a waiting room's
crowd sends most (every waiting buyer's heartbeat, every few seconds), and a join is what the
whole crowd sends at once when an on-sale is announced.

In front of the ordinary route a look paid the framework more than the room: routing through
the nested routers and resolving the route's dependencies were ~65% of its CPU, the room's own
work ~5% (`python -m bench.profile_room --profile`). Here a signed-in caller's request runs
the same command and gives the same answer (tests/integration/test_room_hot_path.py compares
them byte for byte); anything else (no or a bad token; ids that are not UUIDs never match these
routes) goes to the ordinary route, so the route, its documentation and its error answers stay
the one definition. Both run inside every middleware (load shedding, limits, idempotency)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ticketflow.api.booking_hot_path import HotPathRoute, ordinary_route
from ticketflow.api.caller import looks_signed_in, request_caller
from ticketflow.api.errors import domain_problem
from ticketflow.api.idempotency import claimed_key
from ticketflow.api.waiting_room_schemas import PlaceOut
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import AuthenticationFailed, DomainError
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus

JOIN = "/api/v1/events/{event_id:uuid}/queue"
PATH = f"{JOIN}/{{ticket_id:uuid}}"


class _PlaceAnswer:
    """A route's answer with the place `command` (of the caller and the path's ids) gives."""

    def __init__(self, command: Callable[[Actor, dict[str, Any]], cmd.Command]) -> None:
        self._command = command

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
        command = self._command(actor, scope["path_params"])
        try:
            place = await bus.for_request(claimed_key(scope)).handle(command)
        except DomainError as refused:
            answer: Response = domain_problem(Request(scope), refused)
        else:
            answer = Response(PlaceOut.of(place).model_dump_json(), media_type="application/json")
        await answer(scope, receive, send)


def look_route() -> HotPathRoute:
    look = _PlaceAnswer(lambda actor, ids: cmd.VisitPlace(actor, ids["event_id"], ids["ticket_id"]))
    return HotPathRoute(PATH, look, "GET")


def join_route() -> HotPathRoute:
    join = _PlaceAnswer(lambda actor, ids: cmd.JoinWaitingRoom(actor, ids["event_id"]))
    return HotPathRoute(JOIN, join, "POST")
