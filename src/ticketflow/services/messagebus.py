"""A small in-process bus: routes each command to its handler inside a fresh unit of work."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.catalog_snapshots import CatalogSnapshots
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.adapters.idempotency_store import KeyScope
from ticketflow.adapters.payment_gateway import PaymentGateway
from ticketflow.adapters.revoked_sessions import RevokedSessions
from ticketflow.adapters.security import Passwords, Tokens
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.config import Settings
from ticketflow.domain.commands import Command
from ticketflow.request_context import current_request_id as current_request_id  # re-exported
from ticketflow.services.catalog_views import CatalogViews
from ticketflow.services.hold_batcher import HoldBatcher
from ticketflow.services.unit_of_work import KeyClaim, UnitOfWork
from ticketflow.services.waiting_rooms import WaitingRooms


@dataclass(frozen=True)
class Deps:
    """What handlers need besides their unit of work."""

    settings: Settings
    clock: Clock
    passwords: Passwords
    tokens: Tokens
    payments: PaymentGateway
    revoked_sessions: RevokedSessions  # ended sessions whose access tokens must fail
    catalog: CatalogSnapshots
    soldout: SoldOutMarks
    holds: HoldBatcher
    views: CatalogViews
    rooms: WaitingRooms
    redis: Redis | None = None  # unset in the embedded mode: in-process stand-ins instead


Handler = Callable[[Any, UnitOfWork, Deps], Awaitable[Any]]


class MessageBus:
    def __init__(
        self, engine: AsyncEngine, deps: Deps, handlers: Mapping[type[Command], Handler]
    ) -> None:
        self.engine = engine
        self.deps = deps
        self._handlers = dict(handlers)
        self.key: KeyScope | None = None  # see for_request

    def for_request(self, key: KeyScope | None) -> MessageBus:
        """The bus as one request sees it: its commands spend `key`, the request's claimed
        Idempotency-Key, in the transaction of the change they make (api/idempotency.py
        claims it; api/deps.py hands this bus to the route)."""
        if key is None:
            return self
        bound = copy.copy(self)
        bound.key = key
        return bound

    async def handle(self, command: Command, *, key_claim: KeyClaim | None = None) -> Any:
        """Run `command`'s handler in a fresh unit of work; `key_claim`: a key for the change's
        own transaction to claim, with its answer (the booking hot path's)."""
        actor = getattr(command, "actor", None)
        meta = EventMeta(
            actor_id=actor.user_id if actor else None, request_id=current_request_id.get()
        )
        uow = UnitOfWork(self.engine, self.deps.clock, meta, self.key, self.deps.soldout, key_claim)
        return await self._handlers[type(command)](command, uow, self.deps)
