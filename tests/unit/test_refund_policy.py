"""The buyer's own refund rule (domain/refund_policy.py): a check-in, the start of the event or
its refund deadline closes it, whichever comes first; the command and the pages both ask it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.domain.refund_policy import RefundsClosed, RefundsClosedBy, buyer_refunds_closed

STARTS = datetime(2027, 1, 10, 19, 0, tzinfo=UTC)
DEADLINE = datetime(2027, 1, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("now", "deadline", "checked_in", "closed"),
    [
        (DEADLINE - HOUR, DEADLINE, False, None),
        (DEADLINE, DEADLINE, False, RefundsClosed(RefundsClosedBy.DEADLINE, DEADLINE)),
        (STARTS - HOUR, None, False, None),
        (STARTS, None, False, RefundsClosed(RefundsClosedBy.START, STARTS)),
        (STARTS + HOUR, DEADLINE, False, RefundsClosed(RefundsClosedBy.START, STARTS)),
        (DEADLINE - HOUR, DEADLINE, True, RefundsClosed(RefundsClosedBy.CHECK_IN, None)),
    ],
)
def test_a_check_in_the_start_or_the_deadline_closes_the_buyers_refunds(
    now: datetime, deadline: datetime | None, checked_in: bool, closed: RefundsClosed | None
) -> None:
    found = buyer_refunds_closed(
        now, starts_at=STARTS, refund_deadline=deadline, checked_in=checked_in
    )
    assert found == closed


def test_the_refusal_says_what_closed_refunds() -> None:
    closed = RefundsClosed(RefundsClosedBy.DEADLINE, DEADLINE)
    assert (
        closed.explanation() == f"Refunds closed at {DEADLINE.isoformat()} (the refund deadline)."
    )
