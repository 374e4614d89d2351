"""A small in-process bus: routes each command to its handler inside a fresh unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
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
from ticketflow.services.hold_batcher import HoldBatcher, KeyClaim
from ticketflow.services.unit_of_work import UnitOfWork

# Set while a request with an Idempotency-Key runs: its commit marks the key as used.
current_idempotency_scope: ContextVar[KeyScope | None] = ContextVar(
    "current_idempotency_scope", default=None
)

# Set while a booking hot-path hold runs with its key not yet claimed: the hold's batch claims it
# in its own transaction, with the answer (services/hold_batcher.py KeyClaim).
current_key_claim: ContextVar[KeyClaim | None] = ContextVar("current_key_claim", default=None)


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
    redis: Redis | None = None  # unset in the embedded mode: in-process stand-ins instead


Handler = Callable[[Any, UnitOfWork, Deps], Awaitable[Any]]


class MessageBus:
    def __init__(
        self, engine: AsyncEngine, deps: Deps, handlers: Mapping[type[Command], Handler]
    ) -> None:
        self.engine = engine
        self.deps = deps
        self._handlers = dict(handlers)

    async def handle(self, command: Command) -> Any:
        actor = getattr(command, "actor", None)
        meta = EventMeta(
            actor_id=actor.user_id if actor else None, request_id=current_request_id.get()
        )
        uow = UnitOfWork(
            self.engine, self.deps.clock, meta, current_idempotency_scope.get(), self.deps.soldout
        )
        return await self._handlers[type(command)](command, uow, self.deps)
