"""Fault injection: outages, latency, refusals, lost answers and hangs, from a seedable random."""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel, ConfigDict, Field

from ticketflow.payment_provider.errors import ResponseLost, Unavailable


class Faults(BaseModel):
    """What goes wrong; the rates are probabilities drawn once per charge or refund POST."""

    model_config = ConfigDict(extra="forbid")

    failure_rate: float = Field(default=0.0, ge=0, le=1)
    lost_response_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: int = Field(default=0, ge=0)
    hang_seconds: float = Field(default=30.0, ge=0)
    down: bool = False
    seed: int | None = None


class FaultInjector:
    def __init__(self, faults: Faults) -> None:
        self.configure(faults)

    def configure(self, faults: Faults) -> None:
        self.faults = faults
        # A given seed makes the sequence of injected faults the same on every run.
        self._random = random.Random(faults.seed)

    def _strikes(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    async def guard_availability(self) -> None:
        """Every /v1 request: refused at once while down, otherwise delayed by the latency."""
        if self.faults.down:
            raise Unavailable("Sandbox fault: the provider is down.")
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    def refuse_before_recording(self) -> None:
        if self._strikes(self.faults.failure_rate):
            raise Unavailable("Sandbox fault: processor failure; nothing was recorded.")

    async def disturb_answer(self) -> None:
        """After recording: lose the answer, or hold it until the caller has given up."""
        if self._strikes(self.faults.lost_response_rate):
            raise ResponseLost("Sandbox fault: the outcome was recorded but the answer was lost.")
        if self._strikes(self.faults.timeout_rate):
            await asyncio.sleep(self.faults.hang_seconds)
