"""Payments of bookings: one charge per payment id, refunded at most once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from ticketflow.domain import events as ev
from ticketflow.domain.errors import InvalidTransition


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass
class Payment:
    """`id` doubles as the provider's idempotency key: retries of one payment charge once."""

    id: UUID
    booking_id: UUID
    amount_minor: int
    currency: str
    payment_method: str
    status: PaymentStatus = PaymentStatus.PENDING
    provider_ref: str | None = None
    failure_reason: str | None = None
    refund_requested_at: datetime | None = None
    refund_ref: str | None = None
    version: int = 1

    def started(self) -> ev.PaymentStarted:
        return ev.PaymentStarted(
            stream_id=self.id,
            version=self.version,
            booking_id=self.booking_id,
            amount_minor=self.amount_minor,
            currency=self.currency,
            payment_method=self.payment_method,
        )

    def _settle(self, to: PaymentStatus) -> None:
        if self.status is not PaymentStatus.PENDING:
            raise InvalidTransition(f"The payment is already {self.status}.")
        self.status = to
        self.version += 1

    def succeed(self, provider_ref: str) -> ev.PaymentSucceeded:
        self._settle(PaymentStatus.SUCCEEDED)
        self.provider_ref = provider_ref
        return ev.PaymentSucceeded(
            stream_id=self.id, version=self.version, provider_ref=provider_ref
        )

    def fail(self, reason: str) -> ev.PaymentFailed:
        self._settle(PaymentStatus.FAILED)
        self.failure_reason = reason
        return ev.PaymentFailed(stream_id=self.id, version=self.version, reason=reason)

    def request_refund(self, now: datetime, reason: str) -> ev.RefundRequested:
        if self.status is not PaymentStatus.SUCCEEDED or self.refund_requested_at:
            raise InvalidTransition(f"A {self.status} payment cannot be refunded again.")
        self.refund_requested_at = now
        self.version += 1
        return ev.RefundRequested(stream_id=self.id, version=self.version, reason=reason)

    def refunded(self, refund_ref: str) -> ev.PaymentRefunded:
        if self.status is not PaymentStatus.SUCCEEDED or not self.refund_requested_at:
            raise InvalidTransition("Only a payment with a requested refund can be refunded.")
        self.status = PaymentStatus.REFUNDED
        self.refund_ref = refund_ref
        self.version += 1
        return ev.PaymentRefunded(
            stream_id=self.id,
            version=self.version,
            refund_ref=refund_ref,
            amount_minor=self.amount_minor,
        )
