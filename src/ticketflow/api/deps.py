"""Request dependencies as `Annotated` aliases: the bus, a read connection, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.db import one_statement_read
from ticketflow.api.caller import request_caller
from ticketflow.api.idempotency import claimed_key
from ticketflow.domain.errors import AuthenticationFailed
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.pagination import MAX_LIMIT


async def _bus(request: Request) -> MessageBus:
    """The app's bus as this request sees it: its commands spend the request's claimed
    Idempotency-Key (api/idempotency.py puts it in the ASGI scope), if it sent one."""
    bus: MessageBus = request.app.state.bus
    return bus.for_request(claimed_key(request.scope))


Bus = Annotated[MessageBus, Depends(_bus)]


async def _read_connection(bus: Bus) -> AsyncIterator[AsyncConnection]:
    async with bus.engine.connect() as connection:
        yield connection


ReadConnection = Annotated[AsyncConnection, Depends(_read_connection)]


async def _one_statement_read(bus: Bus) -> AsyncIterator[AsyncConnection]:
    async with one_statement_read(bus.engine) as connection:
        yield connection


# For a route whose read is one statement (adapters/db.py `one_statement_read`).
OneStatementRead = Annotated[AsyncConnection, Depends(_one_statement_read)]

_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login")


async def _optional_actor(
    request: Request,
    bus: Bus,
    # Declared for the OpenAPI security scheme; the token is read (once) by request_caller.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor | None:
    return await request_caller(bus, request.scope)


async def _actor(actor: Annotated[Actor | None, Depends(_optional_actor)]) -> Actor:
    if actor is None:
        raise AuthenticationFailed("Send 'Authorization: Bearer <access token>'.")
    return actor


CurrentActor = Annotated[Actor, Depends(_actor)]


def _calls(dependant: Dependant) -> set[object]:
    found: set[object] = set()
    for dependency in dependant.dependencies:
        found |= {dependency.call, *_calls(dependency)}
    return found


def accepts_anonymous(route: APIRoute) -> bool:
    """Whether the route reads a bearer token when sent, yet serves callers without one."""
    calls = _calls(route.dependant)
    return _optional_actor in calls and _actor not in calls


# min_length: an empty `?cursor=` is refused, not read as "from the start", as the schema says.
Cursor = Annotated[
    str | None, Query(min_length=1, max_length=512, description="From `next_cursor`")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
