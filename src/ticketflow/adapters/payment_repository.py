"""Payments, the tickets a paid booking gets, and the provider callbacks already seen."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.booking_repository import WITH_LINES, booking_of
from ticketflow.adapters.direct_sql import Direct
from ticketflow.adapters.tables import bookings, payments, tickets, webhook_receipts
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Booking
from ticketflow.domain.payment import Payment, PaymentStatus

_FIELDS = (
    "booking_id",
    "amount_minor",
    "currency",
    "payment_method",
    "provider_ref",
    "failure_reason",
    "refund_requested_at",
    "refund_ref",
    "version",
)


# Built once and run directly (a payment runs each of these once or twice; building one cost
# about as much CPU as running it, and SQLAlchemy's execution twice asyncpg's: bench/README.md).
_BY_ID = select(payments).where(payments.c.id == bindparam("id"))
_GET = Direct(_BY_ID)
_GET_LOCKED = Direct(_BY_ID.with_for_update())
# A booking with its lines and its live payment (at most one: uq_payments_live_booking), in one
# statement: a payment and a refund start from both, which took a round trip each.
_LIVE_PREFIX = "live_"
_WITH_LIVE_PAYMENT = Direct(
    WITH_LINES.add_columns(
        *(column.label(f"{_LIVE_PREFIX}{column.name}") for column in payments.c)
    ).outerjoin(
        payments,
        and_(
            payments.c.booking_id == bookings.c.id,
            payments.c.status != PaymentStatus.FAILED.value,
        ),
    )
)
_SAVE = Direct(
    update(payments)
    .where(payments.c.id == bindparam("p_id"), payments.c.version == bindparam("p_read_version"))
    .values(
        status=bindparam("p_status"),
        updated_at=bindparam("p_now"),
        **{name: bindparam(f"p_{name}") for name in _FIELDS},
    )
)


def _add(insert_for: Any) -> Any:
    """A new payment, unless the booking has a live one (uq_payments_live_booking) already: no
    row then, where an IntegrityError would need a savepoint to leave the transaction usable."""
    return insert_for(payments).on_conflict_do_nothing(
        index_elements=[payments.c.booking_id],
        # Written out as the index's own predicate: PostgreSQL matches the arbiter index by it,
        # and a bound parameter in its place would match none.
        index_where=text(f"status <> '{PaymentStatus.FAILED.value}'"),
    )


_ADD = {"postgresql": Direct(_add(pg_insert)), "sqlite": Direct(_add(sqlite_insert))}
_ISSUE_TICKETS = Direct(insert(tickets))


def _payment(row: Row[Any], prefix: str = "") -> Payment:
    return Payment(
        id=getattr(row, f"{prefix}id"),
        status=PaymentStatus(getattr(row, f"{prefix}status")),
        **{name: getattr(row, f"{prefix}{name}") for name in _FIELDS},
    )


class PaymentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, payment: Payment, now: datetime) -> None:
        added = await _ADD[self._connection.dialect.name].run(
            self._connection,
            {
                "id": payment.id,
                "status": payment.status.value,
                "created_at": now,
                "updated_at": now,
                **{name: getattr(payment, name) for name in _FIELDS},
            },
        )
        if added != 1:  # uq_payments_live_booking: a concurrent attempt won
            raise Conflict("A payment for this booking is already under way.")

    async def get(self, payment_id: UUID, *, locked: bool = False) -> Payment | None:
        """`locked`: held until the transaction ends (FOR UPDATE), for those who settle it."""
        query = _GET_LOCKED if locked else _GET
        row = await query.one_or_none(self._connection, {"id": payment_id})
        return _payment(row) if row else None

    async def booking_with_live_payment(
        self, booking_id: UUID
    ) -> tuple[Booking, Payment | None] | None:
        """The booking with its one payment that has not failed, if any; None: no such booking."""
        rows = await _WITH_LIVE_PAYMENT.rows(self._connection, {"id": booking_id})
        booking = booking_of(rows)
        if booking is None:
            return None
        live = rows[0]
        return booking, _payment(live, _LIVE_PREFIX) if live.live_id is not None else None

    async def paid_for_event(self, event_id: UUID) -> list[Payment]:
        """Succeeded payments of the event's bookings with no refund asked for yet."""
        rows = await self._connection.execute(
            select(payments)
            .join(bookings, bookings.c.id == payments.c.booking_id)
            .where(
                bookings.c.event_id == event_id,
                payments.c.status == PaymentStatus.SUCCEEDED.value,
                payments.c.refund_requested_at.is_(None),
            )
        )
        return [_payment(row) for row in rows]

    async def save(self, payment: Payment, previous_version: int, now: datetime) -> None:
        saved = await _SAVE.run(
            self._connection,
            {
                "p_id": payment.id,
                "p_read_version": previous_version,
                "p_status": payment.status.value,
                "p_now": now,
                **{f"p_{name}": getattr(payment, name) for name in _FIELDS},
            },
        )
        if saved != 1:
            raise Conflict("The payment changed at the same time; try again.")

    async def unsettled(self, cutoff: datetime, limit: int) -> list[Payment]:
        """Payments a crash may have left halfway: pending, or with a refund not yet done."""
        rows = await self._connection.execute(
            select(payments)
            .where(
                or_(
                    and_(
                        payments.c.status == PaymentStatus.PENDING.value,
                        payments.c.updated_at <= cutoff,
                    ),
                    and_(
                        payments.c.status == PaymentStatus.SUCCEEDED.value,
                        payments.c.refund_requested_at <= cutoff,
                    ),
                )
            )
            .order_by(payments.c.updated_at)
            .limit(limit)
        )
        return [_payment(row) for row in rows]

    async def issue_tickets(self, booking: Booking, ticket_ids: list[UUID], now: datetime) -> None:
        """One ticket per seat, each with a unique unguessable code (for QR and check-in)."""
        seats = [line.ticket_type_id for line in booking.lines for _ in range(line.quantity)]
        await _ISSUE_TICKETS.run_many(
            self._connection,
            [
                {
                    "id": ticket_id,
                    "booking_id": booking.id,
                    "ticket_type_id": ticket_type_id,
                    "code": secrets.token_urlsafe(12),
                    "issued_at": now,
                }
                for ticket_id, ticket_type_id in zip(ticket_ids, seats, strict=True)
            ],
        )

    async def void_tickets(self, booking_id: UUID, now: datetime) -> None:
        await self._connection.execute(
            update(tickets)
            .where(tickets.c.booking_id == booking_id, tickets.c.voided_at.is_(None))
            .values(voided_at=now)
        )

    async def receipt_seen(self, event_id: str) -> bool:
        found = await self._connection.scalar(
            select(webhook_receipts.c.event_id).where(webhook_receipts.c.event_id == event_id)
        )
        return found is not None

    async def first_receipt(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Record a provider callback; False if it was seen before (a replay)."""
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    insert(webhook_receipts).values(
                        event_id=event_id, type=event_type, received_at=now
                    )
                )
        except IntegrityError:
            return False
        return True
