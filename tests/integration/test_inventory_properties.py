"""Inventory under random holds, cancels, expiries and total changes, by two buyers under
per-buyer caps: a stateful property test.

A hypothesis state machine drives the real handlers and databases through the message bus and
keeps a small model beside them. After every step the database must satisfy invariants 1 and 2
and match the model exactly, and every refusal must be the domain error the model predicts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.tables import bookings, events, ticket_types
from ticketflow.bootstrap import build_bus
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import (
    BuyerLimitReached,
    DomainError,
    InvalidInput,
    InvalidTransition,
    NotEnoughTickets,
    NotFound,
    SalesClosed,
)
from ticketflow.domain.model import BookingStatus, Role
from ticketflow.services.sweeper import sweep_once

from ..builders import Account, account, event_on_sale
from ..conftest import BACKENDS, FAST_PASSWORDS, settings_for, wipe
from ..invariants import assert_invariants, assert_read_models_match_state

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SWEEP_BATCH = 2  # tiny, so one sweep runs several batches
PENDING, CANCELLED, EXPIRED = BookingStatus.PENDING, BookingStatus.CANCELLED, BookingStatus.EXPIRED

# An event's ticket type totals, its max per booking, its cap per buyer (None: none) and its
# ticket types' own cap per buyer.
CAP = st.none() | st.integers(1, 8)
TICKET_TYPES = st.tuples(
    st.lists(st.integers(0, 10), min_size=1, max_size=3), st.integers(1, 4), CAP, CAP
)
MAIN_SALE_CLOSES = START + timedelta(days=30)  # the first event stays on sale throughout
# The other events: their ticket types and the minutes until their sales close (they start).
SIDE_EVENTS = st.lists(st.tuples(TICKET_TYPES, st.integers(30, 600)), min_size=1, max_size=2)
# Ways a hold breaks a rule, so that the domain refuses it whatever is left.
HOLD_FAULTS = ["over_max", "zero", "negative", "repeated", "foreign"]

T = TypeVar("T")


class Named:
    """Shown by its short name in assertion messages and hypothesis' failing programs."""

    name: str

    def __repr__(self) -> str:
        return self.name

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.name)


@dataclass(eq=False, repr=False)
class TypeModel(Named):
    name: str
    id: UUID
    price_minor: int
    total: int
    available: int
    max_per_booking: int
    max_per_buyer: int | None


@dataclass(eq=False, repr=False)
class EventModel(Named):
    name: str
    id: UUID
    sales_close: datetime
    types: list[TypeModel]
    max_tickets_per_buyer: int | None
    cancelled: bool = False


@dataclass(eq=False, repr=False)
class BookingModel(Named):
    name: str
    id: UUID
    buyer: Account
    event: EventModel
    lines: list[tuple[TypeModel, int]]
    expires_at: datetime
    status: BookingStatus = PENDING


def quantities(ticket_type: TypeModel) -> st.SearchStrategy[int]:
    """1..max per booking, often exactly what is left or one more: selling out is the edge."""
    edges = [
        quantity
        for quantity in (ticket_type.available, ticket_type.available + 1)
        if 1 <= quantity <= ticket_type.max_per_booking
    ]
    anywhere = st.integers(1, ticket_type.max_per_booking)
    return (anywhere | st.sampled_from(edges)) if edges else anywhere


async def stored_state(engine: AsyncEngine) -> tuple[dict[UUID, Any], ...]:
    """(total, available, max per booking) of each ticket type; status of each booking, event."""
    async with engine.connect() as connection:
        types = await connection.execute(
            select(
                ticket_types.c.id,
                ticket_types.c.total,
                ticket_types.c.available,
                ticket_types.c.max_per_booking,
            )
        )
        booking_rows = await connection.execute(select(bookings.c.id, bookings.c.status))
        event_rows = await connection.execute(select(events.c.id, events.c.status))
        return (
            {row.id: (row.total, row.available, row.max_per_booking) for row in types},
            {row.id: row.status for row in booking_rows},
            {row.id: row.status for row in event_rows},
        )


class InventoryMachine(RuleBasedStateMachine):
    """One example: a fresh bus and clock on a wiped database, run on the machine's own loop
    (the test itself is synchronous, so pytest-asyncio's session loop is never running here)."""

    database_url: ClassVar[str]
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock(START)
        app_settings = settings_for(self.database_url, sweep_batch_size=SWEEP_BATCH)
        self.bus = build_bus(app_settings, self.clock, FAST_PASSWORDS)
        self.hold_ttl = timedelta(seconds=app_settings.hold_ttl_seconds)
        self.events: list[EventModel] = []
        self.bookings: list[BookingModel] = []
        self.run(wipe(self.bus.engine))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.bus.engine.dispose())
        finally:
            self.loop.close()

    def attempt(
        self,
        command: cmd.Command,
        predicted: type[DomainError] | None,
        *or_else: type[DomainError],
    ) -> Any:
        """Handle `command`; it must fail with exactly `predicted` (or one of `or_else`, when
        two refusals are both true), or succeed if that is None."""
        try:
            result = self.run(self.bus.handle(command))
        except DomainError as error:
            expected = (predicted, *or_else)
            assert type(error) in expected, f"model predicted {expected}, got {error!r}"
            return None
        assert predicted is None, f"model predicted {predicted.__name__}, but it succeeded"
        return result

    def release(self, booking: BookingModel, status: BookingStatus) -> None:
        booking.status = status
        for ticket_type, quantity in booking.lines:
            ticket_type.available += quantity

    def pending(self) -> list[BookingModel]:
        return [booking for booking in self.bookings if booking.status is PENDING]

    def sweep(self) -> None:
        released = self.run(sweep_once(self.bus))
        due = [booking for booking in self.pending() if booking.expires_at <= self.clock.now()]
        for booking in due:
            self.release(booking, EXPIRED)
        assert released == len(due)

    @initialize(main=TICKET_TYPES, others=SIDE_EVENTS)
    def open_sales(
        self,
        main: tuple[list[int], int],
        others: list[tuple[tuple[list[int], int], int]],
    ) -> None:
        """The main sale, open throughout and never cancelled, and side events that close or get
        cancelled while the machine runs."""
        self.organizer = self.run(account(self.bus, Role.MANAGER))
        self.buyers = [self.run(account(self.bus)), self.run(account(self.bus))]
        self.stranger = self.run(account(self.bus))
        sales = [(main, MAIN_SALE_CLOSES)]
        sales += [(spec, START + timedelta(minutes=minutes)) for spec, minutes in others]
        for number, (spec, starts_at) in enumerate(sales):
            totals, max_per_booking, event_cap, type_cap = spec
            sale = self.run(
                event_on_sale(
                    self.bus,
                    self.organizer,
                    totals=tuple(totals),
                    max_per_booking=max_per_booking,
                    max_per_buyer=type_cap,
                    max_tickets_per_buyer=event_cap,
                    starts_at=starts_at,
                    ends_at=starts_at + timedelta(hours=3),
                )
            )
            types = [
                TypeModel(
                    f"e{number}t{index}",
                    tt.id,
                    tt.price_minor,
                    tt.total,
                    tt.total,
                    tt.max_per_booking,
                    tt.max_per_buyer,
                )
                for index, tt in enumerate(sale.ticket_types)
            ]
            self.events.append(EventModel(f"e{number}", sale.event.id, starts_at, types, event_cap))

    def draw_lines(self, data: st.DataObject) -> tuple[EventModel, list[tuple[TypeModel, int]]]:
        """An event and 1..n of its ticket types, each within its max per booking."""
        event = data.draw(st.sampled_from(self.events), label="event")
        chosen = data.draw(
            st.lists(
                st.sampled_from(event.types), min_size=1, max_size=len(event.types), unique=True
            ),
            label="ticket types",
        )
        lines = [(tt, data.draw(quantities(tt), label=f"quantity of {tt}")) for tt in chosen]
        return event, lines

    def sales_closed(self, event: EventModel) -> bool:
        return event.cancelled or self.clock.now() >= event.sales_close

    def over_cap(
        self, buyer: Account, event: EventModel, lines: list[tuple[TypeModel, int]]
    ) -> bool:
        """Whether `lines` would take `buyer` past the event's or a ticket type's cap: what they
        hold (pending, expired or not, until swept) counts."""
        had: dict[TypeModel, int] = {}
        for booking in self.pending():
            if booking.buyer is buyer and booking.event is event:
                for tt, quantity in booking.lines:
                    had[tt] = had.get(tt, 0) + quantity
        cap = event.max_tickets_per_buyer
        if cap is not None and sum(had.values()) + sum(q for _, q in lines) > cap:
            return True
        return any(
            tt.max_per_buyer is not None and had.get(tt, 0) + quantity > tt.max_per_buyer
            for tt, quantity in lines
        )

    @rule(target=holds, data=st.data())
    def hold(self, data: st.DataObject) -> Any:
        """Held, or refused because sales are closed, the buyer's cap is reached or a line
        wants more than is left (a sold-out mark may answer before the cap is counted)."""
        event, lines = self.draw_lines(data)
        buyer = data.draw(st.sampled_from(self.buyers), label="buyer")
        short = any(quantity > tt.available for tt, quantity in lines)
        predicted: type[DomainError] | None = None
        or_else: tuple[type[DomainError], ...] = ()
        if self.sales_closed(event):
            predicted = SalesClosed
        elif self.over_cap(buyer, event, lines):
            predicted = BuyerLimitReached
            or_else = (NotEnoughTickets,) if short else ()
        elif short:
            predicted = NotEnoughTickets
        wanted = tuple((tt.id, quantity) for tt, quantity in lines)
        booking = self.attempt(cmd.HoldTickets(buyer.actor, event.id, wanted), predicted, *or_else)
        if booking is None:
            return multiple()
        now = self.clock.now()
        assert booking.status is PENDING
        assert booking.hold_expires_at == now + self.hold_ttl
        assert booking.total_minor == sum(tt.price_minor * quantity for tt, quantity in lines)
        for ticket_type, quantity in lines:
            ticket_type.available -= quantity
        model = BookingModel(
            f"b{len(self.bookings)}", booking.id, buyer, event, lines, now + self.hold_ttl
        )
        self.bookings.append(model)
        return model

    @rule(data=st.data(), fault=st.sampled_from(HOLD_FAULTS))
    def hold_breaking_a_rule(self, data: st.DataObject, fault: str) -> None:
        """Refused whatever is left: a bad quantity (after the sales check), a ticket type named
        twice, or one of another event."""
        event, lines = self.draw_lines(data)
        wanted = [(tt.id, quantity) for tt, quantity in lines]
        predicted: type[DomainError] = InvalidInput
        if fault == "repeated":
            wanted.append(wanted[0])
        elif fault == "foreign":
            wanted.append((self.foreign_type_id(event), 1))
            predicted = NotFound
        else:
            first = lines[0][0]
            bad = {"over_max": first.max_per_booking + 1, "zero": 0, "negative": -2}[fault]
            wanted[0] = (first.id, bad)
            if self.sales_closed(event):
                predicted = SalesClosed
        buyer = data.draw(st.sampled_from(self.buyers), label="buyer")
        self.attempt(cmd.HoldTickets(buyer.actor, event.id, tuple(wanted)), predicted)

    def foreign_type_id(self, event: EventModel) -> UUID:
        """A ticket type of another event, or an id no ticket type has."""
        others = [tt.id for other in self.events if other is not event for tt in other.types]
        return others[0] if others else uuid4()

    @rule(booking=holds, who=st.sampled_from(["buyer", "organizer", "stranger"]))
    def cancel(self, booking: BookingModel, who: str) -> None:
        """Any hold made so far, in any state, by its buyer, the organizer or someone else."""
        actor = {"buyer": booking.buyer, "organizer": self.organizer, "stranger": self.stranger}[
            who
        ]
        predicted: type[DomainError] | None = None
        if who == "stranger":
            predicted = NotFound
        elif booking.status is not PENDING:
            predicted = InvalidTransition
        self.cancel_as(actor, booking, predicted)

    @precondition(lambda self: self.pending())
    @rule(data=st.data())
    def cancel_pending(self, data: st.DataObject) -> None:
        """A hold still pending, by its buyer: its tickets go back on sale."""
        booking = data.draw(st.sampled_from(self.pending()), label="hold")
        self.cancel_as(booking.buyer, booking, None)

    def cancel_as(
        self, actor: Account, booking: BookingModel, predicted: type[DomainError] | None
    ) -> None:
        cancelled = self.attempt(cmd.CancelBooking(actor.actor, booking.id), predicted)
        if cancelled is not None:
            assert cancelled.status is CANCELLED
            self.release(booking, CANCELLED)

    @rule(seconds=st.integers(0, 700), and_sweep=st.booleans())
    def let_time_pass(self, seconds: int, and_sweep: bool) -> None:
        """Without a sweep, holds past their time stay pending (and can still be cancelled)
        until the next one, as between two runs of the sweeper."""
        self.clock.advance(seconds)
        if and_sweep:
            self.sweep()

    def deadlines(self) -> list[datetime]:
        """Moments still ahead where behaviour flips: pending holds expire, sales close."""
        now = self.clock.now()
        moments = {booking.expires_at for booking in self.pending()}
        moments |= {event.sales_close for event in self.events[1:]}
        return sorted(moment for moment in moments if moment > now)

    @precondition(lambda self: self.deadlines())
    @rule(data=st.data(), early=st.booleans())
    def reach_a_deadline(self, data: st.DataObject, early: bool) -> None:
        """Move the clock exactly onto a deadline (it has passed) or 1 µs before it (not yet)."""
        deadline = data.draw(st.sampled_from(self.deadlines()), label="deadline")
        target = deadline - timedelta(microseconds=1 if early else 0)
        self.clock.advance((target - self.clock.now()).total_seconds())
        assert self.clock.now() == target
        self.sweep()

    @rule(data=st.data())
    def change_ticket_type(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.events), label="event")
        tt = data.draw(st.sampled_from(event.types), label="ticket type")
        taken = tt.total - tt.available
        total = data.draw(st.integers(max(-1, taken - 3), taken + 5), label="total")
        max_per_booking = data.draw(st.none() | st.integers(0, 5), label="max_per_booking")
        changes: dict[str, int] = {"total": total}
        if max_per_booking is not None:
            changes["max_per_booking"] = max_per_booking
        predicted: type[DomainError] | None = None
        if event.cancelled or total < taken:
            predicted = InvalidTransition
        elif max_per_booking is not None and max_per_booking < 1:
            predicted = InvalidInput
        command = cmd.UpdateTicketType(self.organizer.actor, tt.id, changes)
        if self.attempt(command, predicted) is None:
            return
        tt.available += total - tt.total
        tt.total = total
        tt.max_per_booking = changes.get("max_per_booking", tt.max_per_booking)

    @precondition(lambda self: not all(event.cancelled for event in self.events[1:]))
    @rule(data=st.data())
    def cancel_event(self, data: st.DataObject) -> None:
        """Cancel a side event while one is left (an already cancelled one again, at times);
        the main sale stays."""
        event = data.draw(st.sampled_from(self.events[1:]), label="event")
        predicted = InvalidTransition if event.cancelled else None
        if self.attempt(cmd.CancelEvent(self.organizer.actor, event.id), predicted) is None:
            return
        event.cancelled = True
        for booking in self.pending():
            if booking.event is event:
                self.release(booking, CANCELLED)

    @invariant()
    def database_agrees_with_model(self) -> None:
        self.run(assert_invariants(self.bus.engine))
        self.run(assert_read_models_match_state(self.bus.engine))
        stored_types, stored_bookings, stored_events = self.run(stored_state(self.bus.engine))
        assert stored_types == {
            tt.id: (tt.total, tt.available, tt.max_per_booking)
            for event in self.events
            for tt in event.types
        }
        assert stored_bookings == {booking.id: booking.status.value for booking in self.bookings}
        assert stored_events == {
            event.id: "cancelled" if event.cancelled else "published" for event in self.events
        }


RUN_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    # No explain phase: tracing SQLAlchemy's lines turns a one-minute shrink into five.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inventory_matches_model_after_every_step(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    machine = type(f"InventoryMachine_{backend}", (InventoryMachine,), {"database_url": url})
    run_state_machine_as_test(machine, settings=RUN_SETTINGS)
