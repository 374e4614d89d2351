"""Settings read from `TICKETFLOW_*` environment variables; the CLI and the app share them."""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_JWT_SECRET = "ticketflow-demo-secret-change-me-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./ticketflow.db"
    redis_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)

    jwt_secret: str = DEMO_JWT_SECRET
    access_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)

    hold_ttl_seconds: int = Field(default=600, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    sweep_batch_size: int = Field(default=500, gt=0)
    # The hot path: "batched" (group commit per ticket type), "direct" (one transaction per
    # hold) or "baseline-lock" (the seed's Redis lock per ticket type, for the benchmark only).
    booking_engine: Literal["batched", "direct", "baseline-lock"] = "batched"
    hold_batch_window_ms: float = Field(default=1.0, ge=0, le=50)
    hold_batch_max: int = Field(default=1000, ge=1)
    catalog_snapshot_ttl_seconds: float = Field(default=0.5, ge=0)
    # How long a process trusts what it knows about a sold-out mark before asking Redis again.
    soldout_local_ttl_seconds: float = Field(default=0.5, ge=0)

    run_sweeper: bool = True
    run_reconciler: bool = True

    idempotency_key_ttl_seconds: int = Field(default=24 * 3600, gt=0)

    rate_limits: str = "on"
    payment_provider_url: str = "http://127.0.0.1:8001"
    payment_timeout_seconds: float = Field(default=5.0, gt=0)
    payment_retry_attempts: int = Field(default=3, ge=1)
    payment_breaker_failure_threshold: int = Field(default=5, ge=1)
    payment_breaker_recovery_seconds: int = Field(default=30, ge=1)
    # Payments still pending this long after they started are settled by asking the provider.
    reconcile_after_seconds: int = Field(default=60, ge=1)
    reconcile_interval_seconds: float = Field(default=15.0, gt=0)
    payment_webhook_secret: str = "ticketflow-demo-webhook-secret"
    webhook_tolerance_seconds: int = Field(default=300, gt=0)

    @cached_property
    def async_database_url(self) -> str:
        """The configured URL with the async driver SQLAlchemy needs for it."""
        url = self.database_url
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.startswith("sqlite")
