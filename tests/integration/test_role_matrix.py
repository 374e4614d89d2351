"""Who may call what: every /api/v1 route of the app, taken from its route table, against every
kind of caller. A route missing from the table below fails the suite, so none goes unchecked."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.payment_gateway import HttpPaymentGateway
from ticketflow.adapters.tables import password_resets, tickets
from ticketflow.api.app import API_PREFIX, create_app
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.payment_provider.signing import sign
from ticketflow.services.messagebus import MessageBus

from ..builders import (
    NOBODYS_ID,
    PASSWORD,
    Account,
    EventOnSale,
    account,
    app_bus,
    booking_body,
    event_body,
    event_on_sale,
    problem,
    ticket_type_body,
)
from ..conftest import FAST_PASSWORDS, serving
from ..provider_in_process import InProcessProvider

OK = "2xx"
Expected = int | str  # 401, 403, 404 or OK
CALLERS = ("anonymous", "user", "manager", "owner", "admin")


@pytest.fixture
async def client(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The conftest `client`, but paying through the sandbox provider served in-process."""
    provider_app = create_provider_app(ProviderSettings(ledger=tmp_path / "ledger.db"))
    async with provider_app.router.lifespan_context(provider_app):
        to_provider = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=provider_app), base_url="http://provider"
        )
        app = create_app(
            settings,
            clock,
            FAST_PASSWORDS,
            HttpPaymentGateway(settings, InProcessProvider(to_provider)),
        )
        async with serving(app) as client:
            yield client


@dataclass(frozen=True)
class World:
    """One of each kind of caller, and something of the owner's for each route to act on."""

    callers: dict[str, Account | None]
    on_sale: EventOnSale  # published, organized by `owner`
    draft: EventOnSale  # a draft, organized by `owner`
    room: EventOnSale  # published with its waiting room on, organized by `owner`
    place_id: UUID  # `user`'s place in `room`'s waiting room, admitted
    held_id: UUID  # `user`'s pending booking on `on_sale`
    paid_id: UUID  # `user`'s confirmed (paid) booking on `on_sale`
    ticket_code: str  # of a ticket of `paid_id`, not admitted yet
    webhook_id: UUID  # a webhook endpoint of `owner`'s
    refresh_token: str  # of a session of `user`
    reset_token: str  # mailed to `user` for a password reset
    now: datetime
    webhook_secret: str

    @property
    def user(self) -> Account:
        user = self.callers["user"]
        assert user is not None
        return user


async def build_world(bus: MessageBus) -> World:
    user, manager, owner, admin = [
        await account(bus, role) for role in (Role.USER, Role.MANAGER, Role.MANAGER, Role.ADMIN)
    ]
    on_sale = await event_on_sale(bus, owner)
    draft = await event_on_sale(bus, owner, publish=False)
    room = await event_on_sale(bus, owner, waiting_room={"admit_per_minute": 600})
    place = await bus.handle(cmd.JoinWaitingRoom(user.actor, room.event.id))
    clock = bus.deps.clock
    assert isinstance(clock, ManualClock)
    clock.advance(1)  # the place's turn comes: a stream of it ends after its first frame
    one_ticket = ((on_sale.ticket_types[0].id, 1),)
    held = await bus.handle(cmd.HoldTickets(user.actor, on_sale.event.id, one_ticket))
    paid = await bus.handle(cmd.HoldTickets(user.actor, on_sale.event.id, one_ticket))
    await bus.handle(cmd.PayForBooking(user.actor, paid.id, "pm_card_visa"))
    session = await bus.handle(cmd.LogIn(user.email, PASSWORD))
    return World(
        callers=dict(zip(CALLERS, (None, user, manager, owner, admin), strict=True)),
        on_sale=on_sale,
        draft=draft,
        room=room,
        place_id=place.ticket_id,
        held_id=held.id,
        paid_id=paid.id,
        ticket_code=await _a_ticket_code(bus, paid.id),
        webhook_id=(
            await bus.handle(
                cmd.RegisterWebhook(owner.actor, "https://example.com/hooks", ("booking.held",))
            )
        )["id"],
        refresh_token=session.refresh_token,
        reset_token=await _a_reset_token(bus, user),
        now=bus.deps.clock.now(),
        webhook_secret=bus.deps.settings.payment_webhook_secret,
    )


async def _a_ticket_code(bus: MessageBus, booking_id: UUID) -> str:
    async with bus.engine.connect() as connection:
        code = await connection.scalar(
            select(tickets.c.code).where(tickets.c.booking_id == booking_id).limit(1)
        )
    assert code is not None
    return str(code)


async def _a_reset_token(bus: MessageBus, user: Account) -> str:
    await bus.handle(cmd.RequestPasswordReset(user.email))
    async with bus.engine.connect() as connection:
        reset_id = await connection.scalar(
            select(password_resets.c.id).where(password_resets.c.user_id == user.actor.user_id)
        )
    assert reset_id is not None
    return bus.deps.tokens.password_reset_token(reset_id)


@dataclass(frozen=True)
class Call:
    """A valid request to a route: its path parameters, and its body and headers if any."""

    params: dict[str, object] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _nothing(world: World) -> Call:
    return Call()


def _with_key(params: dict[str, object], body: dict[str, Any] | None = None) -> Call:
    """Payments and refunds refuse to run without an Idempotency-Key."""
    return Call(params, body, headers={"Idempotency-Key": str(uuid.uuid4())})


def _provider_callback(world: World) -> Call:
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "ping", "data": {}}).encode()
    signature = sign(world.webhook_secret, body, int(world.now.timestamp()))
    return Call(
        content=body,
        headers={"Provider-Signature": signature, "Content-Type": "application/json"},
    )


@dataclass(frozen=True)
class Row:
    """The expected answer per caller (in CALLERS order) and how to make a valid request."""

    anonymous: Expected
    user: Expected  # a buyer: the one who holds the bookings of the World
    manager: Expected  # a manager, but not the organizer of the event concerned
    owner: Expected  # the manager who organizes the event concerned
    admin: Expected
    call: Callable[[World], Call] = _nothing

    def expected(self, caller: str) -> Expected:
        expected: Expected = getattr(self, caller)
        return expected


A = API_PREFIX
NEW_PASSWORD = "a-new-and-long-passphrase"
# fmt: off
MATRIX: dict[tuple[str, str], Row] = {
    #                                                 anonymous user manager owner admin
    ("POST", f"{A}/auth/register"):               Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"email": f"new-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD})),
    ("POST", f"{A}/auth/login"):                  Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"email": w.user.email, "password": PASSWORD})),
    ("POST", f"{A}/auth/refresh"):                Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"refresh_token": w.refresh_token})),
    ("POST", f"{A}/auth/logout"):                 Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"refresh_token": w.refresh_token})),
    ("POST", f"{A}/auth/logout-all"):             Row(401, OK,  OK,  OK,  OK),
    ("POST", f"{A}/auth/password"):               Row(401, OK,  OK,  OK,  OK, lambda w: Call(
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
    ("POST", f"{A}/auth/password-reset"):         Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"email": w.user.email})),
    ("POST", f"{A}/auth/password-reset/confirm"): Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        json={"token": w.reset_token, "new_password": NEW_PASSWORD})),
    ("GET", f"{A}/me"):                           Row(401, OK,  OK,  OK,  OK),
    ("GET", f"{A}/events"):                       Row(OK,  OK,  OK,  OK,  OK),
    ("POST", f"{A}/events"):                      Row(401, 403, OK,  OK,  OK, lambda w: Call(
        json=event_body(w.now))),
    # A draft: only its organizer and admins know it exists.
    ("GET", f"{A}/events/{{event_id}}"):          Row(404, 404, 404, OK,  OK, lambda w: Call(
        {"event_id": w.draft.event.id})),
    # Sales figures are the organizer's business: to anyone else the summary does not exist.
    ("GET", f"{A}/events/{{event_id}}/sales"):    Row(401, 404, 404, OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id})),
    ("PATCH", f"{A}/events/{{event_id}}"):        Row(401, 403, 403, OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id}, {"title": "Renamed"})),
    ("POST", f"{A}/events/{{event_id}}/publish"): Row(401, 403, 404, OK,  OK, lambda w: Call(
        {"event_id": w.draft.event.id})),
    ("POST", f"{A}/events/{{event_id}}/cancel"):  Row(401, 403, 403, OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id})),
    ("POST", f"{A}/events/{{event_id}}/ticket-types"):
                                                  Row(401, 403, 403, OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id}, ticket_type_body())),
    ("PATCH", f"{A}/ticket-types/{{ticket_type_id}}"):
                                                  Row(401, 403, 403, OK,  OK, lambda w: Call(
        {"ticket_type_id": w.on_sale.ticket_types[0].id}, {"total": 150})),
    ("POST", f"{A}/events/{{event_id}}/check-ins"):
                                                  Row(401, 403, 403, OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id}, {"code": w.ticket_code})),
    ("POST", f"{A}/bookings"):                    Row(401, OK,  OK,  OK,  OK, lambda w: Call(
        json=booking_body(w.on_sale.event.id, (w.on_sale.ticket_types[0].id, 2)))),
    ("GET", f"{A}/bookings"):                     Row(401, OK,  OK,  OK,  OK),
    # To a manager of other events a booking does not exist: 404, so ids don't leak.
    ("GET", f"{A}/bookings/{{booking_id}}"):      Row(401, OK,  404, OK,  OK, lambda w: Call(
        {"booking_id": w.held_id})),
    ("POST", f"{A}/bookings/{{booking_id}}/cancel"):
                                                  Row(401, OK,  404, OK,  OK, lambda w: Call(
        {"booking_id": w.held_id})),
    # The organizer sees the booking but may not pay it with their card.
    ("POST", f"{A}/bookings/{{booking_id}}/payments"):
                                                  Row(401, OK,  404, 403, OK, lambda w: _with_key(
        {"booking_id": w.held_id}, {"payment_method": "pm_card_visa"})),
    ("GET", f"{A}/bookings/{{booking_id}}/tickets"):
                                                  Row(401, OK,  404, OK,  OK, lambda w: Call(
        {"booking_id": w.paid_id})),
    ("POST", f"{A}/bookings/{{booking_id}}/refund"):
                                                  Row(401, OK,  404, OK,  OK, lambda w: _with_key(
        {"booking_id": w.paid_id})),
    # The provider's callback is authorized by its signature; a bearer token changes nothing.
    ("POST", f"{A}/payments/webhook"):            Row(OK,  OK,  OK,  OK,  OK, _provider_callback),
    # Webhooks are organizers' (and admins'); another manager's endpoint does not exist for them.
    ("POST", f"{A}/webhooks"):                    Row(401, 403, OK,  OK,  OK, lambda w: Call(
        json={"url": "https://example.com/hooks", "event_types": ["booking.held"]})),
    ("GET", f"{A}/webhooks"):                     Row(401, 403, OK,  OK,  OK),
    ("GET", f"{A}/webhooks/{{webhook_id}}"):      Row(401, 403, 404, OK,  OK, lambda w: Call(
        {"webhook_id": w.webhook_id})),
    ("DELETE", f"{A}/webhooks/{{webhook_id}}"):   Row(401, 403, 404, OK,  OK, lambda w: Call(
        {"webhook_id": w.webhook_id})),
    ("GET", f"{A}/webhooks/{{webhook_id}}/deliveries"):
                                                  Row(401, 403, 404, OK,  OK, lambda w: Call(
        {"webhook_id": w.webhook_id})),
    # Availability is public, of published events only (the WebSocket twin is checked in
    # test_live_availability_e2e.py; without Accept: text/event-stream this answers once).
    ("GET", f"{A}/events/{{event_id}}/live"):     Row(OK,  OK,  OK,  OK,  OK, lambda w: Call(
        {"event_id": w.on_sale.event.id})),
    # A waiting room: any account joins; a place is its owner's alone (to others it does not
    # exist). The stream of an admitted place ends after its one frame.
    ("POST", f"{A}/events/{{event_id}}/queue"):   Row(401, OK,  OK,  OK,  OK, lambda w: Call(
        {"event_id": w.room.event.id})),
    ("GET", f"{A}/events/{{event_id}}/queue/{{ticket_id}}"):
                                                  Row(401, OK,  404, 404, 404, lambda w: Call(
        {"event_id": w.room.event.id, "ticket_id": w.place_id})),
    ("GET", f"{A}/events/{{event_id}}/queue/{{ticket_id}}/stream"):
                                                  Row(401, OK,  404, 404, 404, lambda w: Call(
        {"event_id": w.room.event.id, "ticket_id": w.place_id})),
    ("GET", f"{A}/admin/audit"):                  Row(401, 403, 403, 403, OK),
    ("GET", f"{A}/admin/users"):                  Row(401, 403, 403, 403, OK),
    ("PATCH", f"{A}/admin/users/{{user_id}}"):    Row(401, 403, 403, 403, OK, lambda w: Call(
        {"user_id": w.user.actor.user_id}, {"role": "manager"})),
}
# fmt: on

# Cells where the app answers otherwise today. Strict: once fixed they fail until removed here.
KNOWN_WRONG: dict[tuple[str, str, str], str] = {}


def api_routes() -> list[tuple[str, str]]:
    """(method, path) of every APIRoute under /api/v1 the app has, from its route table.

    Since FastAPI 0.137 `app.routes` holds included routers unexpanded; iter_route_contexts()
    flattens them, with the include prefix applied to each path.
    """
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(create_app(Settings()).routes):
        path = context.path or ""
        if isinstance(context.original_route, APIRoute) and path.startswith(f"{API_PREFIX}/"):
            found += [(method, path) for method in context.methods or ()]
    return sorted(found)


ROUTES = api_routes()
ROUTES_WITH_IDS = [route for route in ROUTES if "{" in route[1]]


def _ids(routes: list[tuple[str, str]]) -> list[str]:
    return [f"{method} {path}" for method, path in routes]


def test_matrix_names_every_api_route_and_no_other() -> None:
    assert len(ROUTES) >= len(MATRIX) // 2, "the route table came back (nearly) empty"
    missing = sorted(set(ROUTES) - set(MATRIX))
    stale = sorted(set(MATRIX) - set(ROUTES))
    assert not missing, f"routes with no row in the role matrix: {missing}"
    assert not stale, f"role matrix rows for routes that no longer exist: {stale}"


def _row(method: str, path: str) -> Row:
    row = MATRIX.get((method, path))
    if row is None:
        pytest.fail(f"{method} {path} has no row in the role matrix: add one")
    return row


async def _send(
    client: httpx.AsyncClient, method: str, path: str, call: Call, caller: Account | None
) -> httpx.Response:
    return await client.request(
        method,
        path.format(**call.params),
        json=call.json,
        content=call.content,
        headers={**call.headers, **(caller.headers if caller else {})},
    )


def _cases() -> list[Any]:
    return [
        pytest.param(
            method,
            path,
            caller,
            id=f"{method} {path} as {caller}",
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[method, path, caller])]
            if (method, path, caller) in KNOWN_WRONG
            else [],
        )
        for method, path in ROUTES
        for caller in CALLERS
    ]


@pytest.mark.parametrize(("method", "path", "caller"), _cases())
async def test_route_answers_each_caller_as_the_matrix_says(
    client: httpx.AsyncClient, method: str, path: str, caller: str
) -> None:
    row = _row(method, path)
    world = await build_world(app_bus(client))
    response = await _send(client, method, path, row.call(world), world.callers[caller])
    expected = row.expected(caller)
    if expected == OK:
        assert response.is_success, response.text
    else:
        assert isinstance(expected, int)
        problem(response, expected)


@pytest.mark.parametrize("bad_id", [NOBODYS_ID, "not-a-uuid"])
@pytest.mark.parametrize(("method", "path"), ROUTES_WITH_IDS, ids=_ids(ROUTES_WITH_IDS))
async def test_an_id_naming_nothing_is_404_even_to_an_admin(
    client: httpx.AsyncClient, method: str, path: str, bad_id: str
) -> None:
    world = await build_world(app_bus(client))
    call = _row(method, path).call(world)
    unknown = Call(dict.fromkeys(call.params, bad_id), call.json, call.content, call.headers)
    response = await _send(client, method, path, unknown, world.callers["admin"])
    problem(response, 404)
