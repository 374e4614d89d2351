"""The provider's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
ChargeStatus = Literal["succeeded", "declined"]


class ChargeRequest(BaseModel):
    amount_minor: int = Field(gt=0, strict=True)
    currency: Currency
    payment_method: str = Field(min_length=1, max_length=100, examples=["pm_card_visa"])
    reference: str | None = Field(default=None, max_length=200)


class Charge(BaseModel):
    id: str
    idempotency_key: str
    amount_minor: int
    currency: str
    payment_method: str
    reference: str | None
    status: ChargeStatus
    decline_reason: str | None
    refunded_minor: int
    created_at: datetime


class RefundRequest(BaseModel):
    charge_id: str
    amount_minor: int | None = Field(
        default=None, gt=0, strict=True, description="Omitted or null: all that is left"
    )


class Refund(BaseModel):
    id: str
    charge_id: str
    amount_minor: int
    status: Literal["succeeded"]
    created_at: datetime


class ChargeList(BaseModel):
    items: list[Charge]


class RefundList(BaseModel):
    items: list[Refund]
