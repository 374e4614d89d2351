"""For the organizer and admin page tests: staff signed in through the sign-in page, and a
browser on an app that can take payments (tickets to scan at the door)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.payment_gateway import HttpPaymentGateway
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain.model import Role
from ticketflow.payment_provider.app import create_provider_app
from ticketflow.payment_provider.settings import ProviderSettings

from ..builders import PASSWORD, Account, account, app_bus
from ..conftest import FAST_PASSWORDS, wipe
from ..provider_in_process import InProcessProvider
from .conftest import LOCAL, form_post


async def sign_in_as(browser: httpx.AsyncClient, role: Role) -> Account:
    """A new account of `role`, signed in on `browser` through the sign-in form."""
    who = await account(app_bus(browser), role)
    signed_in = await form_post(browser, "/sign-in", "/sign-in", email=who.email, password=PASSWORD)
    assert signed_in.status_code == 303, signed_in.text
    return who


@pytest.fixture
async def paying_browser(
    pg_settings: Settings, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The `browser` fixture's app, paying through the sandbox provider served in-process."""
    provider_app = create_provider_app(ProviderSettings(ledger=tmp_path / "ledger.db"))
    async with provider_app.router.lifespan_context(provider_app):
        to_provider = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=provider_app), base_url="http://provider"
        )
        gateway = HttpPaymentGateway(pg_settings, InProcessProvider(to_provider))
        app = create_app(pg_settings, clock, FAST_PASSWORDS, gateway)
        async with app.router.lifespan_context(app):
            await wipe(app.state.bus.engine)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as client:
                client.app_bus = app.state.bus  # type: ignore[attr-defined]
                yield client
