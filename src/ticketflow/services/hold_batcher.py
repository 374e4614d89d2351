"""Group commit for the booking hot path: concurrent holds of one ticket type share one
transaction — one read, one decrement, one multi-row insert of bookings and events.

Each process batches its own requests; batches of different processes queue on the ticket type's
row lock for their decrement, so invariant 1 rests on the database exactly as for single holds.
While a batch commits, the next one gathers, so batches grow with the load and a lone request
waits for no one.

The ticket type's row is locked only at the end of the transaction, after the inserts: batches
of different processes then write at the same time and queue only for the decrement and the
shared counters (see `_allocate`). The inserts (bookings, their events and read-model rows) go
with the statement that claims the holds' keys, not with the one that locks the row: a row
every batch of every process waits for is then locked for that statement, the decrement and
the commit only (the twelfth session timed ~4.2 ms of an 8.6 ms batch under the lock with the
inserts there). A batch allocates from the row as this process's previous batch left it,
when that is recent and far from sold out, instead of reading it again: the check under the
lock catches whatever changed meanwhile, as it does for a read (`_recalled`).

That check is the decrement itself (`take_unchanged`): it takes the tickets only if the event
and the ticket type are still at the versions read (every other change bumps them) and enough
are left, so the row is locked for one statement and the commit; the counters it carries run
after it, once it took. If it took nothing, the batch is allocated again from the row read
locked first, as is a batch that refused a hold for too few tickets (some may have come back).

A hold may bring its Idempotency-Key unclaimed (`KeyClaim`, from the booking hot path): the batch
claims it in the hold's own transaction, already answered, instead of the request spending one
transaction on the claim before and one on the answer after. A key found in use is not taken:
that hold is left out of the batch (`KeyInUse`) and its request is judged the usual way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow import metrics
from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.adapters.idempotency_store import Answer, KeyScope, Settled
from ticketflow.adapters.micro_batch import MicroBatcher
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.domain.allocation import Allocation, allocate, allocation_stands, caps_buyers
from ticketflow.domain.errors import DomainError, NotFound
from ticketflow.domain.events import TicketsHeld
from ticketflow.domain.model import Booking, Event, TicketType
from ticketflow.domain.waiting_room import unadmitted_refusal
from ticketflow.services.hold_rates import SLOW_HOLD, HoldRates
from ticketflow.services.unit_of_work import KeyClaim, UnitOfWork

# How long a ticket type's row, as a batch left it under its lock, stands in for a read, and
# how many times the next batch's tickets it must still have: other processes sell meanwhile.
RECALL_SECONDS = 1.0
RECALL_MARGIN = 2


class KeyInUse(Exception):
    """The hold's key was used before (or is being used): nothing was held or kept for it."""


@dataclass(frozen=True)
class _Hold:
    booking: Booking  # pending, one line; priced again from the row the batch reads
    meta: EventMeta
    key: KeyScope | None  # claimed already by its request
    claim: KeyClaim | None  # or to be claimed here
    admitted: bool  # checked with an admission from the event's waiting room (it was on)
    queued_at: float  # time.monotonic() when it reached the batcher


class HoldBatcher:
    """Queues one-line holds per ticket type (one MicroBatcher each), allocates each batch with
    the domain's `allocate` and commits it."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        soldout: SoldOutMarks,
        *,
        window_seconds: float,
        max_batch: int,
        key_ttl: timedelta,
        rates: HoldRates | None = None,
    ) -> None:
        self._engine, self._clock, self._soldout = engine, clock, soldout
        self._rates = rates or HoldRates()
        self._window, self._max_batch, self._key_ttl = window_seconds, max_batch, key_ttl
        self._queues: dict[UUID, MicroBatcher[_Hold, Booking]] = {}
        # Per ticket type: (event, type) as the last batch left them, locked, and when.
        self._last_locked: dict[UUID, tuple[tuple[Event, TicketType], float]] = {}
        self.batches_committed = 0  # observable group commit: holds per transaction
        self.holds_committed = 0

    async def hold(
        self,
        booking: Booking,
        meta: EventMeta,
        key: KeyScope | None,
        claim: KeyClaim | None = None,
        *,
        admitted: bool = False,
    ) -> Booking:
        """Queue a one-line hold; returns it committed, or raises why it was refused (with
        `claim`: KeyInUse if its key was not free, else the answer is kept before it returns)."""
        ticket_type_id = booking.lines[0].ticket_type_id
        queue = self._queues.get(ticket_type_id)
        if queue is None:
            if len(self._queues) > 10_000:  # a bound, not an eviction policy: types are few
                self._queues = {tt: q for tt, q in self._queues.items() if q.busy}
                self._last_locked = {
                    tt: last for tt, last in self._last_locked.items() if tt in self._queues
                }
            queue = MicroBatcher(
                partial(self._allocate, ticket_type_id), self._max_batch, window=self._window
            )
            self._queues[ticket_type_id] = queue
        return await queue.submit(_Hold(booking, meta, key, claim, admitted, time.monotonic()))

    async def _allocate(
        self, ticket_type_id: UUID, batch: list[_Hold]
    ) -> list[Booking | Exception]:
        """The batch's outcomes, committed.

        Allocated first from an unlocked read, the ticket type's row locked only by the
        transaction's last statement: the other processes' batches wait for it that long, not
        for all of this one's writes. If the row changed meanwhile in a way that matters, the
        batch is allocated again, locked from the start. A key found in use takes its hold out
        of the batch and the rest is allocated again (rare: a retry racing its first attempt).
        """
        in_use: set[int] = set()
        seen: set[KeyScope] = set()
        for index, item in enumerate(batch):  # twins in one batch: the first one goes on
            if item.claim is not None:
                scope = item.claim.use.scope
                if scope in seen:
                    in_use.add(index)
                seen.add(scope)
        locked_first = False
        while True:
            try:
                return await self._allocate_once(ticket_type_id, batch, in_use, locked_first)
            except _KeysTaken as taken:
                in_use |= taken.indexes
            except _Changed:
                locked_first = True

    async def _allocate_once(
        self, ticket_type_id: UUID, batch: list[_Hold], in_use: set[int], locked_first: bool
    ) -> list[Booking | Exception]:
        """One transaction: allocate in arrival order, insert, settle the keys brought
        unclaimed, and last, under the row's lock, check the read and decrement once."""
        uow = UnitOfWork(self._engine, self._clock, EventMeta(), soldout=self._soldout)
        buyers = {item.booking.user_id for item in batch}
        event_id = batch[0].booking.event_id  # checked against the type by checked_booking
        going = [index for index in range(len(batch)) if index not in in_use]
        started = time.monotonic()
        async with uow:
            # Buyers' accounts are locked before the ticket type's row, whichever comes first.
            had = await uow.bookings.holdings(buyers, event_id) if locked_first else None
            wanted = sum(batch[index].booking.lines[0].quantity for index in going)
            read = None if locked_first else self._recalled(ticket_type_id, event_id, wanted)
            if read is None:
                read = await uow.catalog.for_holds(event_id, ticket_type_id, lock=locked_first)
            truth = read if locked_first else None  # the row as locked, once it is
            if had is None and read is not None and caps_buyers(*read):
                had = await uow.bookings.holdings(buyers, event_id)
            # Invariant 9 on the event as it is now (checked again under the lock), not as the
            # copy the holds were checked against: a room turned on since refuses the holds
            # that brought no admission.
            unadmitted = {
                index: refusal
                for index in going
                if read is not None
                and (refusal := unadmitted_refusal(read[0].room, batch[index].admitted))
            }
            allocated = [index for index in going if index not in unadmitted]
            if read is None:
                refused = NotFound("No such ticket type.", field="ticket_type_id")
                allocation = Allocation([refused] * len(allocated), None)
            else:
                holds = [batch[index].booking for index in allocated]
                allocation = allocate(*read, holds, uow.clock.now(), had)
            outcomes: list[Booking | Exception] = [KeyInUse() for _ in batch]
            for index, refusal in unadmitted.items():
                outcomes[index] = refusal
            for index, outcome in zip(allocated, allocation.outcomes, strict=True):
                outcomes[index] = outcome
                if isinstance(outcome, Booking):
                    uow.record(
                        TicketsHeld.of(outcome), meta=batch[index].meta, key=batch[index].key
                    )
            left = allocation.left if locked_first else None  # a mark only from the locked row
            held = allocation.held
            answered = [
                (item.claim, outcome, item.claim.answer_for(outcome))
                for item, outcome in zip(batch, outcomes, strict=True)
                if item.claim is not None and isinstance(outcome, Booking | DomainError)
            ]
            if held:
                await uow.bookings.add(*held)
            if answered:
                # The batch's writes go with the keys' claim, before the ticket type's row is
                # locked (module docstring), not with the statement that locks it.
                await uow.stage()
                settled = [_settled(claim, outcome, answer) for claim, outcome, answer in answered]
                taken = await uow.keys.settle_many(settled, uow.clock.now(), self._key_ttl)
                lost = {
                    index
                    for index in going
                    if (claim := batch[index].claim) is not None and claim.use.scope not in taken
                }
                if lost:
                    raise _KeysTaken(lost)  # rolls this transaction back

            # Allocated from an unlocked read, a batch takes its tickets with the decrement
            # that checks as it takes (module docstring); one that refused a hold for too few
            # tickets reads the row locked first: they may have come back since the read.
            checks_as_it_takes = (
                not locked_first
                and bool(held)
                and not allocation.refused_for_too_few
                and uow.catalog.takes_unchanged
            )

            async def check_under_lock() -> None:
                nonlocal left, truth
                if not locked_first and (held or allocation.refused_for_too_few):
                    fresh = await uow.catalog.for_holds(event_id, ticket_type_id, lock=True)
                    if not allocation_stands(read, fresh, allocation, uow.clock.now()):
                        raise _Changed  # rolls this transaction back
                    assert fresh is not None
                    left, truth = fresh[1].available - allocation.wanted, fresh

            async def take_tickets() -> None:  # it carries the counters
                nonlocal left, truth
                if not held:
                    return
                if checks_as_it_takes:
                    assert read is not None
                    try:  # still on sale now; the rest is the decrement's to check, in SQL
                        read[0].check_on_sale(uow.clock.now())
                    except DomainError:
                        raise _Changed from None  # allocated again, locked, and refused there
                    taken = await uow.catalog.take_unchanged(read, allocation.wanted)
                    if taken is None:
                        raise _Changed  # rolls this transaction back
                    left, truth = taken, read
                elif not await uow.catalog.take_tickets(ticket_type_id, allocation.wanted):
                    raise RuntimeError("the locked row changed under its lock")

            if held or answered:
                check = None if checks_as_it_takes else check_under_lock
                await uow.commit(last=check, carrier=take_tickets)
                if truth is not None and left is not None:
                    event, ticket_type = truth
                    left_as = (event, replace(ticket_type, available=left))
                    self._last_locked[ticket_type_id] = (left_as, time.monotonic())
            if held:
                took = time.monotonic() - started
                self.batches_committed += 1
                self.holds_committed += len(held)
                metrics.HOLD_BATCH_HOLDS.observe(len(held))
                metrics.HOLD_BATCH_SECONDS.observe(took)
                slow_since = time.monotonic() - SLOW_HOLD
                slow = sum(item.queued_at < slow_since for item in batch)
                self._rates.served(event_id, len(held), took, slow)
        for claim, _, answer in answered:
            claim.kept = answer
        if left == 0:
            await self._soldout.mark(ticket_type_id)
        return outcomes

    def _recalled(
        self, ticket_type_id: UUID, event_id: UUID, wanted: int
    ) -> tuple[Event, TicketType] | None:
        """The row as this process's last batch left it, if recent and with RECALL_MARGIN
        times `wanted` left: then it is likely still true where it matters (nothing sold
        out meanwhile); if not, the check under the lock says so and the batch is allocated
        again, locked first."""
        last = self._last_locked.get(ticket_type_id)
        if last is None:
            return None
        (event, ticket_type), at = last
        recent = time.monotonic() - at < RECALL_SECONDS
        if recent and event.id == event_id and ticket_type.available >= RECALL_MARGIN * wanted:
            return event, ticket_type
        return None


def _settled(claim: KeyClaim, outcome: Booking | DomainError, answer: Answer) -> Settled:
    resource = ("booking", outcome.id) if isinstance(outcome, Booking) else None
    return Settled(claim.use, answer, resource)


class _Changed(Exception):
    """The row a batch allocated from changed before it was locked."""


class _KeysTaken(Exception):
    def __init__(self, indexes: set[int]) -> None:
        super().__init__(f"{len(indexes)} keys in use")
        self.indexes = indexes
