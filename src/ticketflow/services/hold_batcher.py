"""Group commit for the booking hot path: concurrent holds of one ticket type share one
transaction — one locked read, one decrement, one multi-row insert of bookings and events.

Each process batches its own requests; batches of different processes queue on the ticket type's
row lock, so invariant 1 rests on the database exactly as for single holds. While a batch commits,
the next one gathers, so batches grow with the load and a lone request waits for no one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.adapters.idempotency_store import KeyScope
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.domain.errors import DomainError, NotEnoughTickets, NotFound
from ticketflow.domain.events import TicketsHeld
from ticketflow.domain.model import Booking, BookingLine
from ticketflow.services.unit_of_work import UnitOfWork


@dataclass
class _Hold:
    booking: Booking  # pending, one line; priced again from the locked row
    meta: EventMeta
    key: KeyScope | None
    done: asyncio.Future[Booking]


class HoldBatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        soldout: SoldOutMarks,
        *,
        window_seconds: float,
        max_batch: int,
    ) -> None:
        self._engine, self._clock, self._soldout = engine, clock, soldout
        self._window, self._max_batch = window_seconds, max_batch
        self._queues: dict[UUID, list[_Hold]] = defaultdict(list)
        self._draining: dict[UUID, asyncio.Task[None]] = {}
        self.batches_committed = 0  # observable group commit: holds per transaction
        self.holds_committed = 0

    async def hold(self, booking: Booking, meta: EventMeta, key: KeyScope | None) -> Booking:
        """Queue a one-line hold; returns it committed, or raises why it was refused."""
        ticket_type_id = booking.lines[0].ticket_type_id
        done: asyncio.Future[Booking] = asyncio.get_running_loop().create_future()
        self._queues[ticket_type_id].append(_Hold(booking, meta, key, done))
        if ticket_type_id not in self._draining:
            self._draining[ticket_type_id] = asyncio.create_task(self._drain(ticket_type_id))
        return await done

    async def _drain(self, ticket_type_id: UUID) -> None:
        try:
            await asyncio.sleep(self._window)  # let a burst's first batch gather
            while queue := self._queues[ticket_type_id]:
                batch = queue[: self._max_batch]
                self._queues[ticket_type_id] = queue[self._max_batch :]
                await self._commit(ticket_type_id, batch)
        finally:
            # No await between the empty check above and here: nothing can slip in unseen.
            del self._draining[ticket_type_id]
            self._queues.pop(ticket_type_id, None)

    async def _commit(self, ticket_type_id: UUID, batch: list[_Hold]) -> None:
        try:
            outcomes = await self._allocate(ticket_type_id, batch)
        except Exception as error:  # the transaction failed: every request in it failed
            outcomes = [error] * len(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.done.done():  # its caller went away; a committed hold simply expires
                continue
            if isinstance(outcome, Exception):
                item.done.set_exception(outcome)
            else:
                item.done.set_result(outcome)

    async def _allocate(
        self, ticket_type_id: UUID, batch: list[_Hold]
    ) -> list[Booking | Exception]:
        """One transaction: lock the row, allocate in arrival order, decrement once, insert."""
        uow = UnitOfWork(self._engine, self._clock, EventMeta(), soldout=self._soldout)
        async with uow:
            locked = await uow.catalog.lock_for_holds(ticket_type_id)
            if locked is None:
                return [NotFound("No such ticket type.", field="ticket_type_id")] * len(batch)
            event, ticket_type = locked
            try:
                event.check_on_sale(uow.clock.now())
            except DomainError as closed:
                return [closed] * len(batch)
            left = ticket_type.available
            outcomes: list[Booking | Exception] = []
            held: list[Booking] = []
            for item in batch:
                quantity = item.booking.lines[0].quantity
                try:
                    ticket_type.check_quantity(quantity)
                except DomainError as refused:
                    outcomes.append(refused)
                    continue
                if quantity > left:
                    outcomes.append(
                        NotEnoughTickets(
                            f"Not enough '{ticket_type.name}' tickets left for {quantity}.",
                            field="quantity",
                        )
                    )
                    continue
                left -= quantity
                booking = item.booking
                booking.currency = ticket_type.currency
                booking.lines = [BookingLine(ticket_type.id, quantity, ticket_type.price_minor)]
                uow.record(TicketsHeld.of(booking), meta=item.meta, key=item.key)
                held.append(booking)
                outcomes.append(booking)
            if held:
                taken = ticket_type.available - left
                if not await uow.catalog.take_tickets(ticket_type_id, taken):
                    raise RuntimeError("the locked row changed under its lock")
                await uow.bookings.add(*held)
                await uow.commit()
                self.batches_committed += 1
                self.holds_committed += len(held)
        if left == 0:
            await self._soldout.mark(ticket_type_id)
        return outcomes
