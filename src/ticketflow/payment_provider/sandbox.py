"""Routes outside the card API: the health probe and the fault-injection controls."""

from __future__ import annotations

from fastapi import APIRouter

from ticketflow.payment_provider.deps import ProviderDep
from ticketflow.payment_provider.faults import Faults

router = APIRouter()


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/_sandbox/faults", tags=["sandbox"])
async def read_faults(provider: ProviderDep) -> Faults:
    return provider.faults.faults


@router.put("/_sandbox/faults", tags=["sandbox"], summary="Replace the faults (omitted: off)")
async def replace_faults(faults: Faults, provider: ProviderDep) -> Faults:
    provider.faults.configure(faults)
    return faults


@router.post("/_sandbox/reset", tags=["sandbox"], summary="Turn every fault off")
async def reset_faults(provider: ProviderDep) -> Faults:
    provider.faults.configure(Faults())
    return provider.faults.faults
