"""Provider settings from `TICKETFLOW_PROVIDER_*` environment variables (the CLI sets them)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ticketflow.payment_provider.faults import Faults


class ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_PROVIDER_", extra="ignore")

    ledger: Path = Path("payment-provider.db")
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_attempts: int = Field(default=5, ge=1)
    webhook_backoff_seconds: float = Field(default=0.5, ge=0)
    # Given as JSON in TICKETFLOW_PROVIDER_FAULTS, the same body PUT /_sandbox/faults takes.
    faults: Faults = Faults()

    @model_validator(mode="after")
    def _webhooks_need_a_secret(self) -> Self:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs webhook_secret to sign the webhooks")
        return self

    @property
    def ledger_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.ledger}"
