"""The engine's holds per second of work, per event and over all events: what a room on "auto"
admits a share of."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.services.hold_rates import (
    TRUSTED_AFTER_HOLDS,
    HoldRates,
    Throughput,
    paced,
    rate_to_admit_from,
)

EVENT, OTHER = uuid.uuid4(), uuid.uuid4()


def test_nothing_is_measured_before_a_batch_is_served() -> None:
    rates = HoldRates()
    assert rates.per_second(EVENT) is None
    rates.served(OTHER, holds=0, seconds=0.01)  # a batch that held nothing measures nothing
    assert rates.per_second(EVENT) is None


def test_the_rate_is_weighted_by_holds_so_batches_of_one_do_not_drag_it_down() -> None:
    rates = HoldRates()
    rates.served(EVENT, holds=500, seconds=0.1)  # 5,000 holds a second of work
    for _ in range(10):
        rates.served(EVENT, holds=1, seconds=0.002)  # lone holds: 500/s each
    # An average of batch rates would say ~900/s; the engine served 510 holds in 0.12 s.
    assert rates.per_second(EVENT) == pytest.approx(510 / 0.12, rel=0.02)


def test_an_event_with_nothing_of_its_own_starts_from_the_engines_rate() -> None:
    rates = HoldRates()
    rates.served(OTHER, holds=3_000, seconds=1.0)
    assert rates.per_second(EVENT) == pytest.approx(3_000)


def test_an_events_own_rate_takes_over_as_its_holds_accumulate() -> None:
    rates = HoldRates()
    rates.served(OTHER, holds=30_000, seconds=10.0)  # the engine: 3,000/s
    rates.served(EVENT, holds=TRUSTED_AFTER_HOLDS // 2, seconds=0.5)  # its own: 1,000/s
    halfway = rates.per_second(EVENT)
    assert halfway is not None and 1_000 < halfway < 3_000
    rates.served(EVENT, holds=TRUSTED_AFTER_HOLDS // 2, seconds=0.5)
    assert rates.per_second(EVENT) == pytest.approx(1_000)
    assert rates.per_second(uuid.uuid4()) is not None  # others still start from the engine's


def test_the_mix_is_proportional_to_the_events_measured_holds() -> None:
    engine, own = Throughput(), Throughput()
    engine.add(4_000, 1.0)
    own.add(TRUSTED_AFTER_HOLDS // 4, TRUSTED_AFTER_HOLDS / 4 / 2_000)  # 2,000/s
    assert rate_to_admit_from(own, engine) == pytest.approx(0.25 * 2_000 + 0.75 * 4_000)
    assert rate_to_admit_from(None, engine) == pytest.approx(4_000)
    assert rate_to_admit_from(None, Throughput()) is None


def test_old_batches_weigh_less_than_recent_ones() -> None:
    engine = Throughput()
    engine.add(1_000, 1.0)  # a slow engine, long ago
    for _ in range(1_000):
        engine.add(50, 0.01)  # 5,000/s since
    assert engine.per_second == pytest.approx(5_000, rel=0.01)


def test_a_second_of_prompt_holds_raises_the_pace_and_slow_ones_halve_it() -> None:
    assert paced(400.0, holds=100, slow=0, best=3_000, served=50) == 500.0  # probing up
    assert paced(400.0, holds=100, slow=1, best=3_000, served=50) == 500.0  # 1% slow: prompt
    assert paced(400.0, holds=100, slow=2, best=3_000, served=50) == 200.0  # more: backing off
    assert paced(400.0, holds=100, slow=2, best=3_000, served=300) == 300.0  # not under served
    assert paced(400.0, holds=0, slow=0, best=3_000, served=50) == 400.0  # nothing learnt
    assert paced(2_800.0, holds=100, slow=0, best=3_000, served=50) == 3_000  # never past best


def test_an_auto_rooms_pace_starts_from_the_measure_and_moves_once_a_second() -> None:
    """Admitting fewer than the engine could serve, a room's holds come in batches of one,
    whose rate is one transaction's: the pace does not follow that measure down."""
    rates, now = HoldRates(), datetime(2026, 12, 6, tzinfo=UTC)
    assert rates.pace(EVENT, now) is None  # nothing measured yet: the room's floor
    rates.served(OTHER, holds=3_000, seconds=1.0)  # the engine, in a burst: 3,000/s
    assert rates.pace(EVENT, now) == pytest.approx(3_000)
    for _ in range(TRUSTED_AFTER_HOLDS):
        rates.served(EVENT, holds=1, seconds=0.02)  # lone holds, 20 ms each, all prompt
    assert (rates.per_second(EVENT) or 0) < 100  # its own measure: one transaction's rate
    assert rates.pace(EVENT, now + timedelta(seconds=1)) == pytest.approx(3_000)  # the best
    rates.served(EVENT, holds=10, seconds=0.1, slow=10)
    assert rates.pace(EVENT, now + timedelta(seconds=1.5)) == pytest.approx(3_000)  # not yet
    assert rates.pace(EVENT, now + timedelta(seconds=2)) == pytest.approx(1_500)  # backed off
    rates.served(EVENT, holds=5, seconds=0.1)
    assert rates.pace(EVENT, now + timedelta(seconds=3)) == pytest.approx(1_875)  # probing up
