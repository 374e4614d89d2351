"""The waiting room's rules (domain/waiting_room.py) on a manual clock: configuration, the
order of the line (a uniform shuffle before the opening, arrival order after), how many are
admitted when, abandonment, sessions and ETAs."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain.errors import InvalidInput, RoomNotOpen
from ticketflow.domain.waiting_room import (
    ABANDONED_AFTER,
    HEARTBEATS_LATE_BY,
    PRE_QUEUE_DRAWS,
    Allowance,
    PlaceState,
    WaitingRoom,
    abandon_before,
    abandoned,
    admissible,
    admission_state,
    admissions_due,
    admitted_per_minute,
    allowance_at,
    eta_seconds,
    in_pre_queue,
    look_again_seconds,
    place_score,
    position_in_line,
    unadmitted_refusal,
)

OPENING = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_room_reads_back_its_json_form_with_defaults_and_auto() -> None:
    room = WaitingRoom.of({"enabled": True})
    assert room == WaitingRoom(True, None, None, 10)
    assert room.data() == {
        "enabled": True,
        "opens_at": None,
        "admit_per_minute": "auto",
        "session_minutes": 10,
    }
    fixed = WaitingRoom.of({"opens_at": OPENING.isoformat(), "admit_per_minute": 120})
    assert fixed.opens_at == OPENING and fixed.admit_per_minute == 120
    assert WaitingRoom.of(fixed.data()) == fixed


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"admit_per_minute": 0}, "waiting_room.admit_per_minute"),
        ({"session_minutes": 0}, "waiting_room.session_minutes"),
        ({"session_minutes": 121}, "waiting_room.session_minutes"),
    ],
)
def test_a_room_breaking_a_rule_is_refused_naming_the_field(
    data: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        WaitingRoom.of(data)
    assert refused.value.field == field


def test_the_pre_queue_cannot_open_after_the_sale() -> None:
    room = WaitingRoom(opens_at=OPENING + timedelta(minutes=1))
    with pytest.raises(InvalidInput) as refused:
        room.check_rules(sales_start=OPENING)
    assert refused.value.field == "waiting_room.opens_at"
    WaitingRoom(opens_at=OPENING - timedelta(hours=1)).check_rules(sales_start=OPENING)


def test_nobody_joins_before_the_pre_queue_opens() -> None:
    clock = ManualClock(OPENING - timedelta(hours=2))
    room = WaitingRoom(opens_at=OPENING - timedelta(hours=1))
    with pytest.raises(RoomNotOpen):
        room.check_joinable(clock.now())
    clock.advance(3600)
    room.check_joinable(clock.now())


def test_joins_before_the_sale_opens_are_the_pre_queue() -> None:
    assert in_pre_queue(OPENING - timedelta(microseconds=1), OPENING)
    assert not in_pre_queue(OPENING, OPENING)
    assert not in_pre_queue(OPENING - timedelta(days=1), None)  # no sales_start: no pre-queue


def _line(draws: random.Random, pre_queue: int, after: int) -> list[int]:
    """Arrival numbers (1, 2, ...) in the order the line admits them."""
    scores = {
        arrival: place_score(arrival <= pre_queue, arrival, draws.randrange(PRE_QUEUE_DRAWS))
        for arrival in range(1, pre_queue + after + 1)
    }
    return sorted(scores, key=scores.__getitem__)


def test_after_the_opening_the_line_is_first_come_first_served_behind_the_pre_queue() -> None:
    for seed in range(50):
        order = _line(random.Random(seed), pre_queue=20, after=30)
        assert sorted(order[:20]) == list(range(1, 21))  # the whole pre-queue goes first
        assert order[20:] == list(range(21, 51))  # then strictly by arrival


def _chi_square_against_uniform(orders: list[list[int]], size: int) -> float:
    """Chi-square of the (arrival, place) table of `orders` against every arrival being at
    every place equally often; 25 degrees of freedom for size 6."""
    counts = Counter((arrival, place) for order in orders for place, arrival in enumerate(order))
    expected = len(orders) / size
    return sum(
        (counts[arrival, place] - expected) ** 2 / expected
        for arrival in range(1, size + 1)
        for place in range(size)
    )


CRITICAL_25_DF = 52.6  # chi-square, 25 degrees of freedom, p = 0.001


def test_the_pre_queue_order_is_a_uniform_shuffle_arriving_first_gains_nothing() -> None:
    size, rooms = 6, 6000
    orders = [_line(random.Random(seed), size, after=0) for seed in range(rooms)]
    assert _chi_square_against_uniform(orders, size) < CRITICAL_25_DF
    first_first = sum(order[0] == 1 for order in orders) / rooms
    assert abs(first_first - 1 / size) < 0.02


def test_the_uniformity_check_catches_an_order_that_favours_early_arrivals() -> None:
    """The test above can fail: one early arrival in ten kept first is far off uniform."""
    size, rooms = 6, 6000
    orders = []
    for seed in range(rooms):
        draws = random.Random(seed)
        order = _line(draws, size, after=0)
        if draws.random() < 0.1:
            order.remove(1)
            order.insert(0, 1)
        orders.append(order)
    assert _chi_square_against_uniform(orders, size) > CRITICAL_25_DF


def test_admissions_are_earned_at_the_rate_from_the_opening_and_not_before() -> None:
    clock = ManualClock(OPENING - timedelta(seconds=30))
    before = allowance_at(None, clock.now(), OPENING, per_minute=60)
    assert admissions_due(before) == 0 and before.at == OPENING
    clock.advance(30.5)  # half a second into the sale
    assert admissions_due(allowance_at(None, clock.now(), OPENING, 60)) == 0
    clock.advance(2.5)
    three_in = allowance_at(None, clock.now(), OPENING, 60)
    assert admissions_due(three_in) == 3
    given = Allowance(three_in.earned - 3, three_in.at)  # three admitted
    clock.advance(1)
    assert admissions_due(allowance_at(given, clock.now(), OPENING, 60)) == 1


def test_an_idle_room_keeps_at_most_a_burst_of_admissions() -> None:
    later = OPENING + timedelta(hours=1)
    assert admissions_due(allowance_at(None, later, OPENING, per_minute=60)) == 10
    assert admissions_due(allowance_at(None, later, OPENING, per_minute=1)) == 1


def test_admissions_outstanding_never_exceed_the_tickets_left() -> None:
    assert admissible(due=10, unsold=100, outstanding=20) == 10
    assert admissible(due=10, unsold=25, outstanding=20) == 5
    assert admissible(due=10, unsold=20, outstanding=20) == 0
    assert admissible(due=10, unsold=3, outstanding=20) == 0  # sold meanwhile: never negative
    assert admissible(due=0, unsold=100, outstanding=0) == 0


def test_auto_admits_a_fraction_of_the_measured_hold_rate_never_below_the_floor() -> None:
    assert admitted_per_minute(120, 1000.0, 0.75, 60) == 120  # fixed: the organizer's
    assert admitted_per_minute(None, 100.0, 0.75, 60) == 4500  # 75% of 100 holds/s
    assert admitted_per_minute(None, None, 0.75, 60) == 60  # nothing measured yet
    assert admitted_per_minute(None, 0.5, 0.75, 60) == 60


def test_a_place_unseen_for_a_minute_is_abandoned() -> None:
    clock = ManualClock(OPENING)
    seen = clock.now()
    clock.advance(59.9)
    assert not abandoned(seen, clock.now())
    clock.advance(0.1)
    assert abandoned(seen, clock.now())


def test_an_admission_lasts_its_session() -> None:
    clock = ManualClock(OPENING)
    admitted_at, session = clock.now(), timedelta(minutes=10)
    clock.advance(599)
    assert admission_state(admitted_at, session, clock.now()) is PlaceState.ADMITTED
    clock.advance(1)
    assert admission_state(admitted_at, session, clock.now()) is PlaceState.EXPIRED


def test_the_eta_counts_the_wait_for_the_opening_then_the_places_ahead() -> None:
    assert eta_seconds(None, 60, OPENING - timedelta(seconds=90), OPENING) == 90
    assert eta_seconds(30, 60, OPENING, OPENING) == 30
    assert eta_seconds(30, 120, OPENING + timedelta(minutes=5), None) == 15


def test_a_hold_without_admission_is_refused_once_its_transaction_reads_the_room_on() -> None:
    on = WaitingRoom()
    assert unadmitted_refusal(None, admitted=False) is None  # no room: nothing to bring
    assert unadmitted_refusal(on, admitted=True) is None  # checked with its admission
    refused = unadmitted_refusal(on, admitted=False)  # checked against a copy without the room
    assert refused is not None and refused.status == 403 and refused.code == "not-admitted"


def test_who_may_join_an_events_room_when() -> None:
    from ticketflow.domain.errors import Conflict, SalesClosed
    from ticketflow.domain.model import EventStatus

    from .test_model import NOW, an_event

    room = WaitingRoom(opens_at=NOW - timedelta(hours=1))
    assert an_event(waiting_room=room).room_to_join(NOW) == room
    with pytest.raises(Conflict, match="no waiting room on"):
        an_event(waiting_room=WaitingRoom(enabled=False)).room_to_join(NOW)
    with pytest.raises(SalesClosed):
        an_event(waiting_room=room, status=EventStatus.CANCELLED).room_to_join(NOW)
    with pytest.raises(SalesClosed, match="Sales closed"):
        an_event(waiting_room=room, sales_end=NOW).room_to_join(NOW)
    with pytest.raises(RoomNotOpen):
        an_event(waiting_room=room).room_to_join(NOW - timedelta(hours=2))


def test_a_place_is_told_to_look_again_sooner_the_nearer_its_turn() -> None:
    waiting = PlaceState.WAITING
    assert look_again_seconds(waiting, 0) == 2  # never a busy loop
    assert look_again_seconds(waiting, 40) == 10  # a quarter of the wait
    assert look_again_seconds(waiting, 3_600) == 30  # far back: seldom, yet a heartbeat
    assert look_again_seconds(waiting, 3_600) < ABANDONED_AFTER.total_seconds()
    assert look_again_seconds(PlaceState.ADMITTED, 0) == 0
    assert look_again_seconds(PlaceState.EXPIRED, 500) == 0


def test_a_place_is_skipped_only_once_unseen_longer_than_a_late_heartbeat_allows() -> None:
    now = OPENING + timedelta(hours=1)
    cutoff = abandon_before(now)
    heard_late = now - ABANDONED_AFTER - HEARTBEATS_LATE_BY / 2  # seen, written late
    assert not heard_late < cutoff
    assert now - ABANDONED_AFTER - 2 * HEARTBEATS_LATE_BY < cutoff


def test_a_place_stands_its_ordinal_minus_the_places_served_until_its_turn() -> None:
    assert position_in_line(ordinal=7, served=0) == 7
    assert position_in_line(ordinal=7, served=6) == 1
    assert position_in_line(ordinal=7, served=7) is None  # its turn came: ask the line
    assert position_in_line(ordinal=7, served=9) is None
