"""The transaction boundary: the only place that commits, together with the domain events."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters import event_store, idempotency_store
from ticketflow.adapters.booking_repository import BookingRepository
from ticketflow.adapters.catalog_repository import CatalogRepository
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.idempotency_store import KeyScope
from ticketflow.adapters.payment_repository import PaymentRepository
from ticketflow.adapters.user_repository import SessionRepository, UserRepository
from ticketflow.domain.events import DomainEvent


class UnitOfWork:
    """`async with uow:` opens one write transaction; `commit()` appends the recorded events
    to the event store in that same transaction, then commits. Leaving without commit rolls back.
    """

    users: UserRepository
    sessions: SessionRepository
    catalog: CatalogRepository
    bookings: BookingRepository
    payments: PaymentRepository

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        meta: event_store.EventMeta,
        idempotency_scope: KeyScope | None = None,
    ) -> None:
        self._engine = engine
        self.clock = clock
        self.meta = meta
        self._idempotency_scope = idempotency_scope
        self._events: list[DomainEvent] = []
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        connection = await self._engine.connect()
        await connection.execution_options(**WRITE)
        await connection.begin()
        self._connection = connection
        self.users = UserRepository(connection)
        self.sessions = SessionRepository(connection)
        self.catalog = CatalogRepository(connection)
        self.bookings = BookingRepository(connection)
        self.payments = PaymentRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                if connection.in_transaction():
                    await connection.rollback()
            finally:
                await connection.close()

    def record(self, *events: DomainEvent) -> None:
        self._events.extend(events)

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside `async with uow:`"
        events, self._events = self._events, []
        await event_store.append(self._connection, events, self.meta, self.clock.now())
        if self._idempotency_scope and events:
            # The request's key is spent together with the change it made, never apart.
            first = events[0]
            await idempotency_store.mark_committed(
                self._connection, self._idempotency_scope, first.stream_type, first.stream_id
            )
        await self._connection.commit()
