"""The transaction boundary: the only place that commits, together with the domain events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.adapters import event_store, projections
from ticketflow.adapters.booking_repository import BookingRepository
from ticketflow.adapters.catalog_repository import CatalogRepository
from ticketflow.adapters.check_in_repository import CheckInRepository
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.direct_sql import drop_later, send_later
from ticketflow.adapters.idempotency_store import Answer, IdempotencyKeys, KeyScope, KeyUse
from ticketflow.adapters.payment_repository import PaymentRepository
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.adapters.user_repository import SessionRepository, UserRepository
from ticketflow.adapters.webhook_repository import WebhookRepository
from ticketflow.domain.errors import DomainError
from ticketflow.domain.events import DomainEvent
from ticketflow.domain.model import Booking


@dataclass(eq=False)
class KeyClaim:
    """An Idempotency-Key not claimed yet, for the hold's own transaction to claim, answered
    already (the booking hot path's; see services/hold_batcher.py)."""

    use: KeyUse
    answer_for: Callable[[Booking | DomainError], Answer]  # the held booking's, or the refusal's
    kept: Answer | None = None  # set once the transaction that kept it has committed


class UnitOfWork:
    """`async with uow:` opens one write transaction; `commit()` appends the recorded events
    to the event store in that same transaction, then commits. Leaving without commit rolls back.

    A request's Idempotency-Key comes in one of two ways: claimed already (`idempotency_scope`:
    the commit marks it spent with the change), or to be claimed in the transaction itself
    with its answer (`key_claim`: only the hold batcher can, see `is_batched`).
    """

    users: UserRepository
    sessions: SessionRepository
    catalog: CatalogRepository
    bookings: BookingRepository
    payments: PaymentRepository
    check_ins: CheckInRepository
    keys: IdempotencyKeys
    webhooks: WebhookRepository

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        meta: event_store.EventMeta,
        idempotency_scope: KeyScope | None = None,
        soldout: SoldOutMarks | None = None,
        key_claim: KeyClaim | None = None,
    ) -> None:
        self._engine = engine
        self.clock = clock
        self.meta = meta
        self._idempotency_scope = idempotency_scope
        self.key_claim = key_claim
        self._soldout = soldout
        self._events: list[Recorded] = []
        self._returned: set[UUID] = set()
        self._keys_spent: set[KeyScope] = set()  # by this unit's commits so far
        # Queued by `stage()` in the open transaction: its read-model counters and the keys it
        # spends, for its commit.
        self._staged: list[projections.Projected] = []
        self._staged_keys: set[KeyScope] = set()
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        connection = await self._engine.connect()
        if connection.dialect.name == "sqlite":  # its BEGIN IMMEDIATE (adapters/db.py)
            await connection.execution_options(**WRITE)
        await connection.begin()
        self._connection = connection
        self.users = UserRepository(connection)
        self.sessions = SessionRepository(connection)
        self.catalog = CatalogRepository(connection)
        self.bookings = BookingRepository(connection, later=True)
        self.payments = PaymentRepository(connection)
        self.check_ins = CheckInRepository(connection)
        self.keys = IdempotencyKeys(connection)
        self.webhooks = WebhookRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        self._staged, self._staged_keys = [], set()
        if connection is not None:
            try:
                drop_later(connection)  # sent by a commit; a rollback forgets them
                if connection.in_transaction():
                    await connection.rollback()
            finally:
                await connection.close()

    @property
    def idempotency_scope(self) -> KeyScope | None:
        """The Idempotency-Key of the request this unit of work serves, if it sent one."""
        return self._idempotency_scope

    def record(
        self,
        *events: DomainEvent,
        meta: event_store.EventMeta | None = None,
        key: KeyScope | None = None,
    ) -> None:
        """Events to append at commit; `meta` and `key` default to this unit's own request (a
        batch of several requests passes each request's own)."""
        for event in events:
            self._events.append(Recorded(event, meta or self.meta, key or self._idempotency_scope))

    async def return_tickets(self, quantities: Mapping[UUID, int]) -> None:
        """Put tickets back on sale; their sold-out marks are cleared once this commits."""
        await self.catalog.return_tickets(quantities)
        self.back_on_sale(ticket_type_id for ticket_type_id, q in quantities.items() if q)

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` once this transaction has committed (cache invalidation and the like);
        never before, so nobody outside sees a change that might still roll back."""
        self._after_commit.append(callback)

    def back_on_sale(self, ticket_type_ids: Iterable[UUID]) -> None:
        """Tickets of these types became available (returned, or a larger total)."""
        self._returned.update(ticket_type_ids)

    async def stage(self) -> None:
        """Queue the writes of the events recorded so far (the event store, the read models'
        rows, the keys they spend) to go with the transaction's next statement, as `commit`
        would; only the counters every writer of a ticket type shares are left for the commit.
        A statement run before a hot row is locked can then carry them (the hold batcher's key
        claims), and the row stays locked for the statement that takes it, not for these."""
        assert self._connection is not None, "stage() outside `async with uow:`"
        recorded, self._events = self._events, []
        now = self.clock.now()
        # The read models change with their events, in this transaction: rows first (a writer
        # touches one before it appends, see services/projection_rebuild.py), the counters
        # every writer of a ticket type shares last (in `commit`), so their row locks are held
        # the least.
        appended = projections.Appended.all((item.event for item in recorded), now)
        projected = await projections.Projected.of(self._connection, appended)
        # Its writes are queued to go with the next statement (adapters/direct_sql.py): fewer
        # round trips, and the queue is sent before the commit, whatever carried it or not.
        await projected.write_rows(self._connection, later=True)
        await event_store.append(
            self._connection,
            [(item.event, item.meta) for item in recorded],
            now,
            [fact.data for fact in appended],
            later=True,
        )
        spent: dict[KeyScope, DomainEvent] = {}
        for item in recorded:
            key = item.key
            if key is not None and key not in self._keys_spent and key not in self._staged_keys:
                spent.setdefault(key, item.event)
        # A request's key is spent together with the change it made, never apart (once: a
        # request that commits twice, as a payment does around its charge, spent it the first).
        await self.keys.mark_committed(
            [(key, first.stream_type, first.stream_id) for key, first in spent.items()]
        )
        self._staged.append(projected)
        self._staged_keys.update(spent)

    async def commit(
        self,
        last: Callable[[], Awaitable[None]] | None = None,
        carrier: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Append the recorded events, change the read models with them, and commit; `last`
        runs just before the shared counters are written, the transaction's final writes.
        `carrier` runs once they are queued: its first statement carries them (one round trip
        fewer), so it writes only rows whose locks the transaction holds already (`last`
        took them), or runs the counters after its own write (Direct.rows_first): else the
        order in which the statement takes its locks would be unknown."""
        assert self._connection is not None, "commit() outside `async with uow:`"
        if self._events or not self._staged:
            await self.stage()
        if last is not None:
            await last()
        for projected in self._staged:
            await projected.write_counters(self._connection, later=True)
        if carrier is not None:
            await carrier()
        await send_later(self._connection)  # what went with no statement since
        await self._connection.commit()
        self._keys_spent.update(self._staged_keys)
        self._staged, self._staged_keys = [], set()
        returned, self._returned = self._returned, set()
        if returned and self._soldout is not None:
            await self._soldout.clear(returned)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            await callback()


@dataclass(frozen=True)
class Recorded:
    event: DomainEvent
    meta: event_store.EventMeta
    key: KeyScope | None
