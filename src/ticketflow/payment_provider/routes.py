"""The card-processing API under /v1: charges and refunds, each recorded once per key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ticketflow.payment_provider.deps import IdempotencyKeyDep, Provider, ProviderDep
from ticketflow.payment_provider.errors import PROBLEM_JSON
from ticketflow.payment_provider.ledger import Recorded
from ticketflow.payment_provider.schemas import (
    Charge,
    ChargeList,
    ChargeRequest,
    Refund,
    RefundList,
    RefundRequest,
)
from ticketflow.payment_provider.webhooks import EventType

REPLAYED_HEADER = "Idempotent-Replayed"


async def _guard_availability(provider: ProviderDep) -> None:
    await provider.faults.guard_availability()


router = APIRouter(prefix="/v1", dependencies=[Depends(_guard_availability)])


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {}}}


_WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("No Idempotency-Key header"),
    422: _problem("Invalid body, or the key was used with other parameters"),
    500: _problem("Injected fault: recorded, but the answer was lost"),
    503: _problem("Injected fault: down, or refused before recording anything"),
}


def _answer(recorded: Recorded[Any], status: int) -> JSONResponse:
    """The first call's answer; a replay gives the same status and body, marked as a replay."""
    item: BaseModel = recorded.item
    headers = {REPLAYED_HEADER: "true"} if recorded.replayed else None
    return JSONResponse(item.model_dump(mode="json"), status_code=status, headers=headers)


async def _finish(provider: Provider, recorded: Recorded[Any], status: int) -> JSONResponse:
    await provider.faults.disturb_answer()
    return _answer(recorded, status)


@router.post(
    "/charges",
    status_code=201,
    response_model=Charge,
    responses={402: {"model": Charge, "description": "Declined (and recorded)"}, **_WRITE_PROBLEMS},
)
async def create_charge(
    body: ChargeRequest, key: IdempotencyKeyDep, provider: ProviderDep
) -> JSONResponse:
    provider.faults.refuse_before_recording()
    recorded = await provider.ledger.record_charge(key, body)
    succeeded = recorded.item.status == "succeeded"
    if not recorded.replayed:
        event: EventType = "charge.succeeded" if succeeded else "charge.declined"
        provider.webhooks.send(event, recorded.item)
    return await _finish(provider, recorded, 201 if succeeded else 402)


@router.get("/charges/{charge_id}", responses={404: _problem("No such charge")})
async def read_charge(charge_id: str, provider: ProviderDep) -> Charge:
    return await provider.ledger.charge(charge_id)


@router.get("/charges")
async def list_charges(
    provider: ProviderDep, idempotency_key: str | None = None, reference: str | None = None
) -> ChargeList:
    found = await provider.ledger.charges(idempotency_key=idempotency_key, reference=reference)
    return ChargeList(items=found)


@router.post(
    "/refunds",
    status_code=201,
    response_model=Refund,
    responses={
        404: _problem("No such charge"),
        409: _problem("The charge was declined, or has less left to refund"),
        **_WRITE_PROBLEMS,
    },
)
async def create_refund(
    body: RefundRequest, key: IdempotencyKeyDep, provider: ProviderDep
) -> JSONResponse:
    provider.faults.refuse_before_recording()
    recorded = await provider.ledger.record_refund(key, body)
    if not recorded.replayed:
        provider.webhooks.send("refund.succeeded", recorded.item)
    return await _finish(provider, recorded, 201)


@router.get("/refunds")
async def list_refunds(provider: ProviderDep, charge_id: str | None = None) -> RefundList:
    return RefundList(items=await provider.ledger.refunds(charge_id=charge_id))
