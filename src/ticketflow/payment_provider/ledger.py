"""The ledger: charges and refunds recorded once per idempotency key, in a SQLite file."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, Table, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ticketflow.payment_provider.errors import IdempotencyKeyReused, NotFound, RefundRefused
from ticketflow.payment_provider.schemas import Charge, ChargeRequest, Refund, RefundRequest
from ticketflow.payment_provider.storage import WRITE, charges, metadata, refunds

# The sandbox's test cards: these payment methods are declined, every other one succeeds.
DECLINE_REASONS = {
    "pm_card_declined": "card_declined",
    "pm_card_insufficient_funds": "insufficient_funds",
}
T = TypeVar("T")


@dataclass(frozen=True)
class Recorded(Generic[T]):
    item: T
    replayed: bool  # True when the key had been used: `item` is what the first call recorded


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**WRITE)

    async def create_tables(self) -> None:
        async with self._writer.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def record_charge(self, key: str, request: ChargeRequest) -> Recorded[Charge]:
        asked = request.model_dump()
        decline_reason = DECLINE_REASONS.get(request.payment_method)
        candidate = {
            **asked,
            "id": new_id("ch"),
            "idempotency_key": key,
            "status": "declined" if decline_reason else "succeeded",
            "decline_reason": decline_reason,
            "refunded_minor": 0,
            "created_at": datetime.now(UTC),
        }
        # ON CONFLICT DO NOTHING: whoever loses the race on the key reads the winner's charge.
        claim = sqlite_insert(charges).values(candidate).on_conflict_do_nothing()
        async with self._writer.begin() as connection:
            await connection.execute(claim)
            stored = await connection.execute(_where(charges, idempotency_key=key))
            charge = Charge.model_validate(stored.one()._mapping)
        replayed = charge.id != candidate["id"]
        if replayed and charge.model_dump(include=set(asked)) != asked:
            raise IdempotencyKeyReused(f"Idempotency-Key {key!r} names another charge.")
        return Recorded(charge, replayed)

    async def record_refund(self, key: str, request: RefundRequest) -> Recorded[Refund]:
        asked = (request.charge_id, request.amount_minor)
        async with self._writer.begin() as connection:
            earlier = (await connection.execute(_where(refunds, idempotency_key=key))).first()
            if earlier is not None:
                if (earlier.charge_id, earlier.requested_minor) != asked:
                    raise IdempotencyKeyReused(
                        f"Idempotency-Key {key!r} was used for another refund."
                    )
                return Recorded(Refund.model_validate(earlier._mapping), replayed=True)
            refund = Refund(
                id=new_id("re"),
                charge_id=request.charge_id,
                amount_minor=await _take_refund(connection, request),
                status="succeeded",
                created_at=datetime.now(UTC),
            )
            row = {**refund.model_dump(), "idempotency_key": key, "requested_minor": asked[1]}
            await connection.execute(insert(refunds).values(row))
        return Recorded(refund, replayed=False)

    async def charge(self, charge_id: str) -> Charge:
        found = await self.charges(id=charge_id)
        if not found:
            raise NotFound(f"No charge {charge_id!r}.")
        return found[0]

    async def charges(self, **equal_to: str | None) -> list[Charge]:
        """Charges, oldest first, whose columns equal the given values (None: any value)."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(_where(charges, **equal_to))
            return [Charge.model_validate(row._mapping) for row in rows]

    async def refunds(self, **equal_to: str | None) -> list[Refund]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(_where(refunds, **equal_to))
            return [Refund.model_validate(row._mapping) for row in rows]


def _where(table: Table, **equal_to: str | None) -> Select[Any]:
    conditions = [table.c[name] == value for name, value in equal_to.items() if value is not None]
    return select(table).where(*conditions).order_by(table.c.created_at, table.c.id)


async def _take_refund(connection: AsyncConnection, request: RefundRequest) -> int:
    """Adds the refund to its charge's refunded total; returns the amount refunded."""
    charge = (await connection.execute(_where(charges, id=request.charge_id))).first()
    if charge is None:
        raise NotFound(f"No charge {request.charge_id!r}.")
    if charge.status != "succeeded":
        raise RefundRefused(f"Charge {charge.id} was declined: there is nothing to refund.")
    left = charge.amount_minor - charge.refunded_minor
    amount = left if request.amount_minor is None else request.amount_minor
    if left == 0 or amount > left:
        raise RefundRefused(f"Charge {charge.id} has {left} left to refund, not {amount}.")
    # The SQL condition repeats the check, so the refunded total can never pass the amount.
    refunded = charges.c.refunded_minor + amount
    taken = await connection.execute(
        update(charges)
        .where(charges.c.id == charge.id, refunded <= charges.c.amount_minor)
        .values(refunded_minor=refunded)
    )
    if taken.rowcount != 1:
        raise RefundRefused(f"Charge {charge.id} has less than {amount} left to refund.")
    return amount
