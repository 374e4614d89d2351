"""The booking hot path: group commit, sold-out marks, and re-checks under the row lock."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.idempotency_store import Answer, ClaimOutcome, KeyScope
from ticketflow.adapters.tables import idempotency_keys
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import DomainError, NotEnoughTickets, SalesClosed
from ticketflow.domain.model import Booking
from ticketflow.services.hold_batcher import KeyInUse
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.unit_of_work import KeyClaim

from ..builders import Account, EventOnSale, account, event_on_sale
from ..invariants import assert_invariants
from ..polling import eventually
from .keys import booking_key, claim


async def test_concurrent_holds_share_transactions_and_never_oversell(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(50,))
    tier = sale.ticket_types[0].id
    buyers = [await account(bus) for _ in range(20)]
    attempts = [
        bus.handle(cmd.HoldTickets(buyers[n % 20].actor, sale.event.id, ((tier, 1),)))
        for n in range(200)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    held = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, NotEnoughTickets)]
    assert (len(held), len(refused)) == (50, 150)
    batcher = bus.deps.holds
    assert batcher.holds_committed == 50
    assert batcher.batches_committed < 50  # group commit happened
    await assert_invariants(bus.engine)


async def test_a_hold_on_a_cancelled_event_is_refused_even_from_a_stale_copy(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    tier = sale.ticket_types[0].id
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))  # caches it
    await bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    with pytest.raises(SalesClosed):
        await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await assert_invariants(bus.engine)


async def test_a_hold_pays_the_price_of_the_locked_row_not_of_a_stale_copy(
    bus: MessageBus,
) -> None:
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    tier = sale.ticket_types[0].id
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))  # caches it
    await bus.handle(cmd.UpdateTicketType(sale.organizer.actor, tier, {"price_minor": 777}))
    booking = await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 2),)))
    assert booking.total_minor == 2 * 777


async def test_a_batch_from_the_row_its_process_left_sells_no_ticket_another_process_sold(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    """A process allocates its next batch from the row as its last batch left it (one read
    fewer); what other processes sold meanwhile is found under the lock, and the batch is
    allocated again from the truth: refused for the tickets that are gone, not oversold."""
    first, second = two_processes
    sale = await event_on_sale(first, totals=(10,))
    tier = sale.ticket_types[0].id
    buyer = await account(first)
    await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))  # 9 left
    await second.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 8),)))  # 1 left
    with pytest.raises(NotEnoughTickets):  # `first` remembers 9 left, and asks for 2
        await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 2),)))
    last = await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    assert last.lines[0].quantity == 1
    with pytest.raises(NotEnoughTickets, match="sold out"):
        await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await assert_invariants(first.engine)


async def test_an_event_cancelled_while_two_processes_hold_deadlocks_with_nothing(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    """A batch locks the event (shared) and then the ticket type in one statement, the order
    cancel_event takes them in: a cancellation among the batches of two processes waits its
    turn, and every hold is either held before it or refused after it."""
    first, second = two_processes
    sale = await event_on_sale(first, totals=(5_000,))
    tier = sale.ticket_types[0].id
    buyers = [await account(first) for _ in range(4)]
    held: list[Booking] = []
    holding = asyncio.Event()  # set once batches are under way

    async def keep_holding(bus: MessageBus, buyer: Account) -> BaseException:
        while True:
            try:
                held.append(
                    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
                )
            except Exception as refused:  # the test looks at what ended it
                return refused
            if len(held) >= 40:
                holding.set()

    loops = [
        asyncio.create_task(keep_holding(bus, buyer)) for buyer in buyers for bus in (first, second)
    ]
    await holding.wait()
    await second.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    endings = await asyncio.gather(*loops)
    assert all(isinstance(ending, SalesClosed) for ending in endings), endings
    assert len(held) >= 40
    await assert_invariants(first.engine)


async def test_sold_out_mark_is_shared_and_cleared_when_a_ticket_returns(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    first, second = two_processes
    sale = await event_on_sale(first, totals=(1,))
    tier = sale.ticket_types[0].id
    buyer = await account(first)
    booking = await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    # Behind the app's back one more ticket appears: only the database would know.
    async with first.engine.begin() as connection:
        await connection.execute(
            text("UPDATE ticket_types SET total = 2, available = 1 WHERE id = :id"), {"id": tier}
        )
    with pytest.raises(NotEnoughTickets, match="sold out"):  # refused from the shared mark
        await second.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await second.handle(cmd.CancelBooking(buyer.actor, booking.id))  # clears the mark
    await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await first.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),)))
    await assert_invariants(first.engine)


async def test_flushed_redis_sells_nothing_twice(
    two_processes: tuple[MessageBus, MessageBus], redis_url: str
) -> None:
    first, second = two_processes
    sale = await event_on_sale(first, totals=(30,))
    tier = sale.ticket_types[0].id
    buyer = await account(first)
    redis = Redis.from_url(redis_url)
    attempts = []
    for n in range(120):
        bus = first if n % 2 else second
        attempts.append(bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 1),))))
        if n == 60:
            attempts.append(redis.flushall())
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    await redis.aclose()
    held = [o for o in outcomes if not isinstance(o, BaseException | bool)]
    assert len(held) == 30
    assert all(isinstance(o, NotEnoughTickets) for o in outcomes if isinstance(o, BaseException))
    await assert_invariants(first.engine)


def _claim(buyer: Account, key: str, quantity: int = 1) -> KeyClaim:
    body = f'{{"quantity": {quantity}}}'.encode()  # any body: the fingerprint only tells apart

    def answer_for(outcome: Booking | DomainError) -> Answer:
        if isinstance(outcome, Booking):
            return Answer(201, str(outcome.id), "text/plain")
        return Answer(outcome.status, outcome.detail, "text/plain")

    return KeyClaim(booking_key(KeyScope(buyer.actor.user_id, key), body), answer_for)


async def _hold_claiming(
    bus: MessageBus, claim: KeyClaim, buyer: Account, sale: EventOnSale, quantity: int = 1
) -> Booking:
    tier = sale.ticket_types[0].id
    booking: Booking = await bus.handle(
        cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, quantity),)), key_claim=claim
    )
    return booking


async def _key_rows(bus: MessageBus) -> dict[str, tuple[str, int | None, str | None]]:
    async with bus.engine.connect() as connection:
        rows = await connection.execute(
            select(
                idempotency_keys.c.key,
                idempotency_keys.c.state,
                idempotency_keys.c.response_status,
                idempotency_keys.c.response_body,
            )
        )
        return {row.key: (row.state, row.response_status, row.response_body) for row in rows}


async def test_a_batch_claims_keys_with_their_answers_and_leaves_keys_in_use_alone(
    bus: MessageBus, clock: ManualClock
) -> None:
    """Keys brought unclaimed are kept in the hold's transaction, answered: held or refused.
    A key in use (another request's claim, or a twin earlier in the batch) takes its hold out
    of the batch: nothing held, nothing kept for it, and the others still go through."""
    sale = await event_on_sale(bus, totals=(3,))
    buyers = [await account(bus) for _ in range(5)]
    busy = _claim(buyers[0], "busy")
    taken = await claim(bus, busy.use)
    assert taken.outcome is ClaimOutcome.PROCEED
    twin, twin_again = _claim(buyers[1], "twin"), _claim(buyers[1], "twin")
    k2, k3, k4 = _claim(buyers[2], "k2"), _claim(buyers[3], "k3"), _claim(buyers[4], "k4")
    asked = [(busy, 0), (twin, 1), (twin_again, 1), (k2, 2), (k3, 3), (k4, 4)]  # 3 tickets
    outcomes = await asyncio.gather(
        *(_hold_claiming(bus, key, buyers[n], sale) for key, n in asked),
        return_exceptions=True,
    )
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "KeyInUse", "Booking", "KeyInUse", "Booking", "Booking", "NotEnoughTickets",
    ]  # fmt: skip
    assert (busy.kept, twin_again.kept) == (None, None)
    held = [outcome for outcome in outcomes if isinstance(outcome, Booking)]
    rows = await _key_rows(bus)
    assert rows["busy"] == ("in_flight", None, None)  # untouched
    for kept, booking in zip((twin, k2, k3), held, strict=True):
        assert kept.kept == Answer(201, str(booking.id), "text/plain")
        assert rows[kept.use.scope.key] == ("done", 201, str(booking.id))
    assert k4.kept is not None and k4.kept.status == 409
    assert rows["k4"] == ("done", 409, k4.kept.body)  # a refusal is replayed too
    assert bus.deps.holds.holds_committed == 3
    await assert_invariants(bus.engine)


async def test_a_key_used_before_is_not_taken_by_a_batch(bus: MessageBus) -> None:
    """The retry of a kept hold: its batch finds the key answered, holds nothing more."""
    sale = await event_on_sale(bus, totals=(5,))
    buyer = await account(bus)
    first = _claim(buyer, "again")
    booking = await _hold_claiming(bus, first, buyer, sale)
    with pytest.raises(KeyInUse):
        await _hold_claiming(bus, _claim(buyer, "again"), buyer, sale)
    assert (await _key_rows(bus))["again"] == ("done", 201, str(booking.id))
    assert bus.deps.holds.holds_committed == 1
    await assert_invariants(bus.engine)


async def test_only_a_batched_hold_may_claim_a_key(bus: MessageBus) -> None:
    sale = await event_on_sale(bus, totals=(5, 5))
    buyer = await account(bus)
    tiers = [tier.id for tier in sale.ticket_types]
    with pytest.raises(RuntimeError, match="not batched"):
        await bus.handle(
            cmd.HoldTickets(buyer.actor, sale.event.id, tuple((t, 1) for t in tiers)),
            key_claim=_claim(buyer, "two-lines"),
        )
    assert await _key_rows(bus) == {}
    await assert_invariants(bus.engine)


async def test_two_processes_batches_write_side_by_side_and_sell_exactly_the_total(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    """Batches lock the ticket type only for their last statements: two processes' batches
    insert at the same time (the booking lines key-share the row meanwhile), then take turns
    for the decrement. Neither may wait on the other in a circle, nor sell past the total."""
    first, second = two_processes
    sale = await event_on_sale(first, totals=(300,))
    tier = sale.ticket_types[0].id
    buyers = [await account(first) for _ in range(4)]
    attempts = [
        bus.handle(cmd.HoldTickets(buyers[n % 4].actor, sale.event.id, ((tier, 1),)))
        for n in range(200)
        for bus in (first, second)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(outcomes) - len(refused) == 300
    assert all(isinstance(o, NotEnoughTickets) for o in refused), refused[:1]
    assert first.deps.holds.batches_committed + second.deps.holds.batches_committed < 300
    await assert_invariants(first.engine)


async def test_a_batch_waits_for_the_ticket_types_row_with_its_writes_already_sent(
    two_processes: tuple[MessageBus, MessageBus],
) -> None:
    """The row every batch of every process locks is locked for a batch's last statements
    only: its inserts (bookings, their events and read models) go with the keys' claim,
    before, so the statement that waits for the row carries none of them and a batch holding
    the row makes the others wait for no insert of its own. That statement is the decrement
    itself (no locked read first), and the shared counters it carries are not locked while it
    waits: they are taken after the row, in the order every writer takes them."""
    bus = two_processes[0]
    sale = await event_on_sale(bus, totals=(5,))
    tier = sale.ticket_types[0].id
    buyer = await account(bus)
    waiting: list[str] = []

    async def a_statement_waits_for_the_row() -> bool:
        async with bus.engine.connect() as connection:
            waiting[:] = await connection.scalars(
                text(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
        return bool(waiting)

    async with bus.engine.connect() as other_process:  # another process's batch, locking
        await other_process.execute(
            text("SELECT 1 FROM ticket_types WHERE id = :id FOR NO KEY UPDATE"), {"id": tier}
        )
        holding = asyncio.create_task(_hold_claiming(bus, _claim(buyer, "waits"), buyer, sale))
        await eventually(a_statement_waits_for_the_row, within=10.0, what="the batch's lock wait")
        async with bus.engine.connect() as third:  # the counters' rows: free meanwhile
            for table in ("rm_ticket_type_sales", "rm_availability"):
                locked = text(
                    f"SELECT 1 FROM {table} WHERE ticket_type_id = :id FOR NO KEY UPDATE NOWAIT"
                )
                assert (await third.execute(locked, {"id": tier})).scalar() == 1
            await third.rollback()
        await other_process.rollback()
    booking = await holding
    [statement] = waiting  # its first kB (track_activity_query_size): the decrement's start
    assert " ".join(statement.split()).startswith("WITH first AS (UPDATE ticket_types"), statement
    assert "INSERT" not in statement.upper(), statement
    assert booking.lines[0].quantity == 1
    await assert_invariants(bus.engine)
