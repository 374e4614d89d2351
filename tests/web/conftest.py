"""In-process page tests: the app over httpx as a browser on the local host would reach it
(http://localhost, where our cookies are not `Secure`, so the client sends them back)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.config import Settings

from ..builders import PASSWORD, app_bus
from ..conftest import FAST_PASSWORDS, wipe

LOCAL = "http://localhost"
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def browser(pg_settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app on PostgreSQL, asked as a browser asks: cookies kept, redirects not followed."""
    app = create_app(pg_settings, clock, FAST_PASSWORDS)
    async with app.router.lifespan_context(app):
        await wipe(app.state.bus.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as client:
            client.app_bus = app.state.bus  # type: ignore[attr-defined]
            yield client


def csrf_token(html: str) -> str:
    found = _CSRF_INPUT.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


async def form_post(
    browser: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    """Open `page`, then send its form to `action` with its CSRF token and `fields`."""
    opened = await browser.get(page)
    return await browser.post(action, data={"csrf_token": csrf_token(opened.text), **fields})


async def sign_up(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    answer = await form_post(browser, "/sign-up", "/sign-up", email=email, password=PASSWORD)
    assert answer.status_code == 303, answer.text
    return answer


__all__ = ["app_bus", "csrf_token", "form_post", "sign_up"]
