"""Settings read from `TICKETFLOW_*` environment variables; the CLI and the app share them."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEMO_JWT_SECRET = "ticketflow-demo-secret-change-me-in-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    # One line per record on stdout: JSON for log pipelines, or readable (`make run`).
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    database_url: str = "sqlite:///./ticketflow.db"
    redis_url: str | None = None
    redis_max_connections: int = Field(default=200, ge=1)
    # Kept open, with no overflow: an overflow connection is closed when it comes back to a
    # full pool and opened again for the next request past it (a connect, a TLS attempt, the
    # codecs, every statement prepared again), so 10 + 5 churned under load where 15 + 0 did not
    # (a booking's tickets read at 20 at once: 0.83 -> 0.56-0.71 ms of app CPU, bench/README.md).
    db_pool_size: int = Field(default=15, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    # How long a request waits for a free database connection before its answer is 503 +
    # Retry-After (never a 500: a busy pool is overload, not a bug).
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # Load shedding (api/load_shedding.py): requests per process worked on at once, and how long
    # the next ones wait for a place before they are answered 503 + Retry-After. 0: no limit.
    # Near the database pool's size (15): the ones past it would only queue for a connection,
    # where nothing bounds their wait but the pool timeout (issue 15: at 128, refusals took up to
    # 8 s at 5,000 users on the slower host; at 32 with 0.1 s patience, p95 258 ms, max 0.42 s).
    shed_requests_in_progress: int = Field(default=32, ge=0)
    shed_wait_seconds: float = Field(default=0.1, gt=0)
    # Looks at waiting places and joins are worked on in lines of their own, this share of
    # the capacity above while admitted buyers come to hold (the whole capacity otherwise):
    # then they give way first (api/load_shedding.py).
    shed_room_share: float = Field(default=0.0625, gt=0, le=1)

    # argon2id hashes (sign-up, login) at once per process, and how long the next one waits
    # for a turn before it is answered 503 + Retry-After (adapters/security.py Passwords).
    password_hash_concurrency: int = Field(default=2, ge=1)
    password_hash_wait_seconds: float = Field(default=5.0, gt=0)

    # GET /metrics asks for `Authorization: Bearer <this>` when set; anonymous otherwise.
    metrics_token: str | None = None

    # Unset outside production: a random secret generated on first start and kept beside the
    # embedded SQLite database (`dev_jwt_secret_file`), or on another database the demo secret,
    # which `serve` refuses on any address but loopback. Production refuses to start without one.
    jwt_secret: str | None = None
    access_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    # Key rotation: a JSON object {"kid": "secret"}; new tokens are signed with the active kid,
    # any kid still listed verifies. Unset: jwt_secret is the one key (kid "default").
    jwt_keys: dict[str, str] = Field(default_factory=dict)
    jwt_active_kid: str | None = None
    # Every token names us as its issuer and this API as its audience; tokens naming others
    # are refused.
    jwt_issuer: str = Field(default="ticketflow", min_length=1)
    jwt_audience: str = Field(default="ticketflow-api", min_length=1)
    # Every session ended in the database is copied into the revocation cache again this often:
    # the bound on how long a lost cache write (Redis down at logout) lets an access token in.
    revocation_resync_seconds: float = Field(default=60.0, gt=0)

    hold_ttl_seconds: int = Field(default=600, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    sweep_batch_size: int = Field(default=500, gt=0)
    # The hot path: "batched" (group commit per ticket type), "direct" (one transaction per
    # hold) or "baseline-lock" (the seed's Redis lock per ticket type, for the benchmark only).
    booking_engine: Literal["batched", "direct", "baseline-lock"] = "batched"
    hold_batch_window_ms: float = Field(default=1.0, ge=0, le=50)
    hold_batch_max: int = Field(default=1000, ge=1)
    # Bookings per process let in at once on the hot path (api/booking_hot_path.py), before
    # their token is even checked; the rest wait their turn, and meet the sold-out mark of a type
    # that sold out meanwhile. One hold batch's worth: the burst drained fastest at 1000 (250:
    # 3.2-3.4 s, 500: 2.9-3.0, 1000: 2.7-2.8, 2000: 3.5-3.6, bench/README.md).
    booking_admission_window: int = Field(default=1000, ge=1)
    catalog_snapshot_ttl_seconds: float = Field(default=0.5, ge=0)
    # Waiting rooms on "auto" admit this fraction of the holds per second the engine serves
    # (services/hold_rates.py), and never fewer a minute than the floor (nothing measured yet).
    waiting_room_auto_fraction: float = Field(default=0.75, gt=0, le=1)
    waiting_room_auto_floor_per_minute: float = Field(default=60.0, gt=0)
    # How often a place's stream (GET .../queue/{ticket_id}/stream) sends its state.
    waiting_room_stream_seconds: float = Field(default=2.0, gt=0)
    # How long a process trusts what it knows about a sold-out mark before asking Redis again.
    soldout_local_ttl_seconds: float = Field(default=0.5, ge=0)

    # Cached catalog reads (services/catalog_views.py): events and pages are deleted from the
    # shared cache on every write; availability is not (it changes with every hold). Each process
    # answers from copies of both, renewed from it: what any instance shows is as of at most
    # availability_cache_ttl_seconds ago (the public reads' freshness bound). 0 turns a part off.
    catalog_cache_ttl_seconds: float = Field(default=60.0, ge=0)
    availability_cache_ttl_seconds: float = Field(default=1.0, ge=0)

    run_sweeper: bool = True
    run_reconciler: bool = True
    # The outbox relay: committed domain events -> the Redis Stream `events_stream` (only with
    # redis_url; one relay at a time across instances, resuming from its stored position).
    run_relay: bool = True
    relay_interval_seconds: float = Field(default=0.2, gt=0)
    relay_batch_size: int = Field(default=500, gt=0)
    events_stream: str = "ticketflow:events"
    events_stream_maxlen: int = Field(default=1_000_000, gt=0)  # trimmed approximately
    # Background consumers of the events (services/consumer_runtime.py): e-mail, webhooks, ...
    run_consumers: bool = True
    consumer_idle_seconds: float = Field(default=0.2, gt=0)
    # While a process answers more requests than this at once, its relay and consumers wait for
    # a lull before each round, at most the patience (services/requests_in_flight.py). 0: never.
    busy_requests_in_flight: int = Field(default=64, ge=0)
    background_patience_seconds: float = Field(default=1.0, gt=0, le=30)
    # Organizers' webhooks (services/webhook_delivery.py): the worker POSTs due deliveries,
    # retrying failures with doubling delays (plus jitter) until `give_up` after creation.
    run_webhook_deliveries: bool = True
    webhook_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=10, ge=1)
    webhook_batch_size: int = Field(default=100, ge=1)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_give_up_seconds: float = Field(default=24 * 3600.0, gt=0)
    # Receivers on our own network (loopback, private ranges, metadata): refused unless this says
    # so (adapters/outbound_targets.py); and how many live endpoints one organizer may have.
    webhook_allow_private_networks: bool = False
    webhook_max_endpoints_per_owner: int = Field(default=20, ge=1)
    # Live availability (GET /events/{id}/live): how long several events share one read, the
    # updates a client may fall behind by before it is dropped, and the SSE keepalive.
    live_coalesce_seconds: float = Field(default=0.1, ge=0)
    live_queue_size: int = Field(default=16, ge=1)
    live_keepalive_seconds: float = Field(default=15.0, gt=0)
    # Live streams (WebSocket or SSE) one client address, and one process, may hold open.
    live_streams_per_ip: int = Field(default=20, ge=1)
    live_streams_per_process: int = Field(default=5000, ge=1)
    live_poll_seconds: float = Field(default=0.1, gt=0)  # embedded: how often the store is read

    idempotency_key_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    # SIGTERM: stop accepting, let requests in flight finish, flush the outbox position; a worker
    # still busy after this long is killed (keep it under the orchestrator's own grace period).
    shutdown_grace_seconds: int = Field(default=20, ge=1, le=1800)

    rate_limits: str = "on"
    # `limits` notation: "20/minute", "10/15 minutes", several joined by ";".
    rate_limit_login_per_ip: str = "20/minute"
    rate_limit_login_per_account: str = "10/15 minutes"  # counts failed logins only
    rate_limit_bookings_per_user: str = "30/minute"
    rate_limit_default_per_ip: str = "300/minute"
    # POST /auth/password-reset, counted whether or not the address has an account.
    rate_limit_password_reset_per_ip: str = "10/hour"
    rate_limit_password_reset_per_account: str = "3/hour"
    # Peers whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated); none by default.
    trusted_proxies: str = ""
    cors_origins: str = ""  # comma-separated origins a browser may call the API from
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
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
    # Buyers' e-mails (tickets with QR codes, cancellations, refunds). No SMTP host: each mail
    # is logged instead of sent, so a development setup needs nothing else.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "TicketFlow <tickets@ticketflow.example>"
    # Where buyers reach the web pages, for the links in e-mails (the password reset's).
    public_url: str = "http://127.0.0.1:8000"

    @field_validator(
        "rate_limit_login_per_ip",
        "rate_limit_login_per_account",
        "rate_limit_bookings_per_user",
        "rate_limit_default_per_ip",
        "rate_limit_password_reset_per_ip",
        "rate_limit_password_reset_per_account",
    )
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        parse_many(value)  # a typo fails at start-up, not at the first request it limits
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value  # LOG_LEVEL=INFO is fine too

    @model_validator(mode="after")
    def _active_jwt_kid_is_configured(self) -> Settings:
        if self.jwt_keys and self.jwt_active_kid not in self.jwt_keys:
            raise ValueError("TICKETFLOW_JWT_ACTIVE_KID must name one of TICKETFLOW_JWT_KEYS")
        return self

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

    @property
    def dev_jwt_secret_file(self) -> Path | None:
        """Where the generated JWT secret is kept when none is configured outside production:
        beside the embedded database file (`ticketflow.db` -> `ticketflow.db.jwt-secret`), so
        every process and command on that database signs with the same one. None otherwise."""
        if self.jwt_secret or self.jwt_keys or self.environment == "production":
            return None
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(f"{database}.jwt-secret")
