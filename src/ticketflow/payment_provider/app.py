"""create_provider_app(): the sandbox provider's FastAPI application and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from ticketflow.payment_provider import routes, sandbox
from ticketflow.payment_provider.deps import Provider
from ticketflow.payment_provider.errors import install_problem_handlers
from ticketflow.payment_provider.faults import FaultInjector
from ticketflow.payment_provider.ledger import Ledger
from ticketflow.payment_provider.settings import ProviderSettings
from ticketflow.payment_provider.storage import open_ledger_engine
from ticketflow.payment_provider.webhooks import WebhookSender

WEBHOOK_TIMEOUT_SECONDS = 5.0


def create_provider_app(
    settings: ProviderSettings | None = None,
    webhook_client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The provider app; settings from TICKETFLOW_PROVIDER_* unless given (as tests do)."""
    settings = settings or ProviderSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(open_ledger_engine(settings.ledger_url))
        await ledger.create_tables()
        client = webhook_client or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS)
        webhooks = WebhookSender(
            settings.webhook_url,
            settings.webhook_secret or "",
            client,
            attempts=settings.webhook_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
        )
        app.state.provider = Provider(ledger, FaultInjector(settings.faults), webhooks)
        try:
            yield
        finally:
            await webhooks.close()
            if webhook_client is None:
                await client.aclose()
            await ledger.engine.dispose()

    app = FastAPI(
        title="TicketFlow sandbox payment provider",
        version="0.1.0",
        summary="A fake card processor with its own ledger, idempotency keys and injected faults.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.include_router(routes.router)
    app.include_router(sandbox.router)
    return app
