"""The seed's booking design, kept only so the benchmark can measure ours against it
(TICKETFLOW_BOOKING_ENGINE=baseline-lock): a Redis lock per ticket type around read, check, write.

Every hold of a ticket type queues on one lock (polled every 0.1 s by redis-py), and the lock has
no fencing token: a holder that outlives the 5 s lease writes over its successor's decrement. Our
engine needs neither (DESIGN.md, "The booking hot path"); never select this in production.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Self
from uuid import UUID

from redis.exceptions import LockError
from sqlalchemy import update

from ticketflow.adapters.catalog_repository import CatalogRepository
from ticketflow.adapters.tables import ticket_types
from ticketflow.domain import commands as cmd
from ticketflow.domain import events as ev
from ticketflow.domain.errors import ServiceUnavailable
from ticketflow.domain.model import Booking
from ticketflow.services.bookings import checked_booking
from ticketflow.services.messagebus import Deps
from ticketflow.services.unit_of_work import UnitOfWork

LOCK_LEASE_SECONDS = 5
LOCK_WAIT_SECONDS = 10


class _OverwritingCatalog(CatalogRepository):
    async def overwrite_available(self, ticket_type_id: UUID, available: int) -> None:
        """Unconditional write of a value read earlier: the Redis lock is all that stands
        between it and a lost update (our engine decrements conditionally instead)."""
        await self._connection.execute(
            update(ticket_types)
            .where(ticket_types.c.id == ticket_type_id)
            .values(available=available)
        )


class _BaselineUnitOfWork(UnitOfWork):
    """The bus's unit of work, with the baseline's one write of its own."""

    catalog: _OverwritingCatalog

    @classmethod
    def like(cls, uow: UnitOfWork) -> _BaselineUnitOfWork:
        return cls(uow._engine, uow.clock, uow.meta, uow.idempotency_scope, uow._soldout)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        assert self._connection is not None
        self.catalog = _OverwritingCatalog(self._connection)
        return self


async def hold_tickets_with_lock(command: cmd.HoldTickets, uow: UnitOfWork, deps: Deps) -> Booking:
    """Hold tickets under one Redis lock per ticket type (taken in id order): plain SELECT of
    `available`, check, plain UPDATE to the value read minus the quantity, insert, commit."""
    booking, _ = await checked_booking(command, deps)
    uow = _BaselineUnitOfWork.like(uow)
    if deps.redis is None:
        raise RuntimeError("the baseline-lock engine needs TICKETFLOW_REDIS_URL")
    lines = sorted(booking.lines, key=lambda line: line.ticket_type_id)
    try:
        async with AsyncExitStack() as held_locks:
            for line in lines:
                await held_locks.enter_async_context(
                    deps.redis.lock(
                        f"lock:ticket_type:{line.ticket_type_id}",
                        timeout=LOCK_LEASE_SECONDS,
                        blocking_timeout=LOCK_WAIT_SECONDS,
                    )
                )
            async with uow:
                for line in lines:
                    ticket_type = await uow.catalog.get_ticket_type(line.ticket_type_id)
                    assert ticket_type is not None  # checked_booking found it in the catalog
                    if ticket_type.available < line.quantity:
                        raise ticket_type.too_few_left(line.quantity)
                    await uow.catalog.overwrite_available(
                        line.ticket_type_id, ticket_type.available - line.quantity
                    )
                await uow.bookings.add(booking)
                uow.record(ev.TicketsHeld.of(booking))
                await uow.commit()
    except LockError as error:  # not acquired in time, or the lease ran out before release
        raise ServiceUnavailable("Too many bookings at once; retry shortly.") from error
    return booking
