"""The engine's holds per second of work, per event: what a room on "auto" admits a share of."""

from __future__ import annotations

import uuid

import pytest

from ticketflow.services.hold_rates import HoldRates

EVENT, OTHER = uuid.uuid4(), uuid.uuid4()


def test_nothing_is_measured_before_a_batch_is_served() -> None:
    assert HoldRates().per_second(EVENT) is None


def test_the_rate_is_holds_per_second_of_batch_work_averaged_per_event() -> None:
    rates = HoldRates()
    rates.served(EVENT, holds=50, seconds=0.01)  # 5,000 holds a second of work
    assert rates.per_second(EVENT) == pytest.approx(5000)
    rates.served(EVENT, holds=1, seconds=0.01)  # a lone hold: 100/s, weighted in by a fifth
    assert rates.per_second(EVENT) == pytest.approx(5000 + 0.2 * (100 - 5000))
    assert rates.per_second(OTHER) is None
    rates.served(OTHER, holds=0, seconds=0.01)  # a batch that held nothing measures nothing
    assert rates.per_second(OTHER) is None
