"""The engine's holds per second of work, per event and over all events: what a room on "auto"
admits a share of."""

from __future__ import annotations

import uuid

import pytest

from ticketflow.services.hold_rates import (
    TRUSTED_AFTER_HOLDS,
    HoldRates,
    Throughput,
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
