"""Group commit for the booking hot path: concurrent holds of one ticket type share one
transaction — one locked read, one decrement, one multi-row insert of bookings and events.

Each process batches its own requests; batches of different processes queue on the ticket type's
row lock for their decrement, so invariant 1 rests on the database exactly as for single holds.
While a batch commits, the next one gathers, so batches grow with the load and a lone request
waits for no one.

The ticket type's row is locked only at the end of the transaction, after the inserts: batches
of different processes then write at the same time and queue only for the decrement and the
shared counters (see `_allocate`).

A hold may bring its Idempotency-Key unclaimed (`KeyClaim`, from the booking hot path): the batch
claims it in the hold's own transaction, already answered, instead of the request spending one
transaction on the claim before and one on the answer after. A key found in use is not taken:
that hold is left out of the batch (`KeyInUse`) and its request is judged the usual way.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.event_store import EventMeta
from ticketflow.adapters.idempotency_store import ClaimRequest, KeyScope, Settled
from ticketflow.adapters.soldout_marks import SoldOutMarks
from ticketflow.domain.errors import DomainError, NotEnoughTickets, NotFound
from ticketflow.domain.events import TicketsHeld
from ticketflow.domain.model import Booking, BookingLine, Event, TicketType
from ticketflow.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Answer:
    """What a request answers, as its key keeps it for replays."""

    status: int
    body: str
    content_type: str


@dataclass(eq=False)
class KeyClaim:
    """An Idempotency-Key to claim in the hold's transaction, kept there with its answer."""

    request: ClaimRequest
    answer_for: Callable[[Booking | DomainError], Answer]  # the held booking's, or the refusal's
    kept: Answer | None = None  # set once the transaction that kept it has committed


class KeyInUse(Exception):
    """The hold's key was used before (or is being used): nothing was held or kept for it."""


@dataclass
class _Hold:
    booking: Booking  # pending, one line; priced again from the locked row
    meta: EventMeta
    key: KeyScope | None  # claimed already by its request
    claim: KeyClaim | None  # or to be claimed here
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
        key_ttl: timedelta,
    ) -> None:
        self._engine, self._clock, self._soldout = engine, clock, soldout
        self._window, self._max_batch, self._key_ttl = window_seconds, max_batch, key_ttl
        self._queues: dict[UUID, list[_Hold]] = defaultdict(list)
        self._draining: dict[UUID, asyncio.Task[None]] = {}
        self.batches_committed = 0  # observable group commit: holds per transaction
        self.holds_committed = 0

    async def hold(
        self,
        booking: Booking,
        meta: EventMeta,
        key: KeyScope | None,
        claim: KeyClaim | None = None,
    ) -> Booking:
        """Queue a one-line hold; returns it committed, or raises why it was refused (with
        `claim`: KeyInUse if its key was not free, else the answer is kept before it returns)."""
        ticket_type_id = booking.lines[0].ticket_type_id
        done: asyncio.Future[Booking] = asyncio.get_running_loop().create_future()
        self._queues[ticket_type_id].append(_Hold(booking, meta, key, claim, done))
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
        """The batch's outcomes, committed.

        Allocated first from an unlocked read, the ticket type's row locked only for the
        transaction's last statements: the other processes' batches wait for it that long, not
        for all of this one's writes. If the row changed meanwhile in a way that matters, the
        batch is allocated again, locked from the start. A key found in use takes its hold out
        of the batch and the rest is allocated again (rare: a retry racing its first attempt).
        """
        in_use: set[int] = set()
        seen: set[KeyScope] = set()
        for index, item in enumerate(batch):  # twins in one batch: the first one goes on
            if item.claim is not None:
                scope = item.claim.request.scope
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
        async with uow:
            # Buyers' accounts are locked before the ticket type's row, whichever comes first.
            had = await uow.bookings.holdings(buyers, event_id) if locked_first else None
            read = await uow.catalog.for_holds(ticket_type_id, lock=locked_first)
            if had is None and read is not None and _caps_buyers(*read):
                had = await uow.bookings.holdings(buyers, event_id)
            outcomes, left = self._outcomes(read, batch, in_use, had, uow)
            if not locked_first:
                left = None  # a sold-out mark only from the locked row (see take_tickets)
            held = [outcome for outcome in outcomes if isinstance(outcome, Booking)]
            answered = [
                (item.claim, outcome, item.claim.answer_for(outcome))
                for item, outcome in zip(batch, outcomes, strict=True)
                if item.claim is not None and isinstance(outcome, Booking | DomainError)
            ]
            if answered:
                settled = [_settled(claim, outcome, answer) for claim, outcome, answer in answered]
                taken = await uow.settle_keys(settled, self._key_ttl)
                lost = {
                    index
                    for index, item in enumerate(batch)
                    if item.claim is not None
                    and index not in in_use
                    and item.claim.request.scope not in taken
                }
                if lost:
                    raise _KeysTaken(lost)  # rolls this transaction back
            if held:
                await uow.bookings.add(*held)
            wanted = sum(booking.lines[0].quantity for booking in held)
            # A hold refused for too few tickets is only right if `available` was.
            short = any(isinstance(outcome, NotEnoughTickets) for outcome in outcomes)

            async def take_tickets() -> None:
                nonlocal left
                if not locked_first and (held or short):
                    fresh = await uow.catalog.for_holds(ticket_type_id, lock=True)
                    if not allocation_stands(read, fresh, wanted, short, uow.clock.now()):
                        raise _Changed  # rolls this transaction back
                    assert fresh is not None
                    left = fresh[1].available - wanted
                if held and not await uow.catalog.take_tickets(ticket_type_id, wanted):
                    raise RuntimeError("the locked row changed under its lock")

            if held or answered:
                await uow.commit(last=take_tickets)
            if held:
                self.batches_committed += 1
                self.holds_committed += len(held)
        for claim, _, answer in answered:
            claim.kept = answer
        if left == 0:
            await self._soldout.mark(ticket_type_id)
        return outcomes

    @staticmethod
    def _outcomes(
        locked: tuple[Event, TicketType] | None,
        batch: list[_Hold],
        in_use: set[int],
        had: dict[UUID, dict[UUID, int]] | None,
        uow: UnitOfWork,
    ) -> tuple[list[Booking | Exception], int | None]:
        """Each hold's outcome from the locked row: held (its event recorded) or why not; and
        the tickets left after them (None: the type can't be sold now). `had`: what each
        buyer had already, counted with the holds allocated before theirs in this batch."""
        if locked is None:
            refused: DomainError = NotFound("No such ticket type.", field="ticket_type_id")
            return [KeyInUse() if i in in_use else refused for i in range(len(batch))], None
        event, ticket_type = locked
        try:
            event.check_on_sale(uow.clock.now())
        except DomainError as closed:
            return [KeyInUse() if i in in_use else closed for i in range(len(batch))], None
        left = ticket_type.available
        outcomes: list[Booking | Exception] = []
        for index, item in enumerate(batch):
            if index in in_use:
                outcomes.append(KeyInUse())
                continue
            quantity = item.booking.lines[0].quantity
            buyer = item.booking.user_id
            try:
                ticket_type.check_quantity(quantity)
                if had is not None and _caps_buyers(event, ticket_type):
                    event.check_buyer_limits([(ticket_type, quantity)], had[buyer])
            except DomainError as refused_quantity:
                outcomes.append(refused_quantity)
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
            if had is not None:
                had[buyer][ticket_type.id] = had[buyer].get(ticket_type.id, 0) + quantity
            booking = item.booking
            booking.currency = ticket_type.currency
            booking.lines = [BookingLine(ticket_type.id, quantity, ticket_type.price_minor)]
            uow.record(TicketsHeld.of(booking), meta=item.meta, key=item.key)
            outcomes.append(booking)
        return outcomes, left


def _caps_buyers(event: Event, ticket_type: TicketType) -> bool:
    return event.caps_buyers or ticket_type.max_per_buyer is not None


def _settled(claim: KeyClaim, outcome: Booking | DomainError, answer: Answer) -> Settled:
    resource = ("booking", outcome.id) if isinstance(outcome, Booking) else None
    return Settled(claim.request, answer.status, answer.body, answer.content_type, resource)


def allocation_stands(
    read: tuple[Event, TicketType] | None,
    fresh: tuple[Event, TicketType] | None,
    wanted: int,
    exact: bool,
    now: datetime,
) -> bool:
    """Whether what was allocated from `read` stands on `fresh`, the locked truth: the event
    and the ticket type unchanged but for `available`, still on sale, and enough tickets left
    (`exact`: exactly as many as read, since a hold was refused for too few)."""
    if read is None or fresh is None:
        return False
    (event, ticket_type), (fresh_event, fresh_type) = read, fresh
    if fresh_event != event or replace(fresh_type, available=ticket_type.available) != ticket_type:
        return False
    try:
        fresh_event.check_on_sale(now)
    except DomainError:
        return False
    if exact:
        return fresh_type.available == ticket_type.available
    return fresh_type.available >= wanted


class _Changed(Exception):
    """The row a batch allocated from changed before it was locked."""


class _KeysTaken(Exception):
    def __init__(self, indexes: set[int]) -> None:
        super().__init__(f"{len(indexes)} keys in use")
        self.indexes = indexes
