"""When a buyer may still refund a paid booking themselves: one rule, asked by the refund
command (services/payments.py) and by the pages that offer the button (web/my_tickets.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RefundsClosedBy(StrEnum):
    CHECK_IN = "check-in"  # a ticket of the booking was admitted
    START = "start"  # the event started
    DEADLINE = "deadline"  # the event's refund deadline passed


@dataclass(frozen=True)
class RefundsClosed:
    by: RefundsClosedBy
    at: datetime | None  # when they closed: the start or the deadline (None: a check-in)

    def explanation(self) -> str:
        if self.by is RefundsClosedBy.CHECK_IN:
            return "A ticket of this booking was already checked in."
        assert self.at is not None
        if self.by is RefundsClosedBy.START:
            return f"The event started at {self.at.isoformat()}."
        return f"Refunds closed at {self.at.isoformat()} (the refund deadline)."


def buyer_refunds_closed(
    now: datetime, *, starts_at: datetime, refund_deadline: datetime | None, checked_in: bool
) -> RefundsClosed | None:
    """None while the buyer may refund a paid booking of an event starting at `starts_at`
    (with `refund_deadline`, if any); else what closed refunds. Its organizer and admins
    decide for themselves, whatever this says."""
    if checked_in:
        return RefundsClosed(RefundsClosedBy.CHECK_IN, None)
    if now >= starts_at:
        return RefundsClosed(RefundsClosedBy.START, starts_at)
    if refund_deadline is not None and now >= refund_deadline:
        return RefundsClosed(RefundsClosedBy.DEADLINE, refund_deadline)
    return None
