"""The pages' cookies are `Secure` when the browser reached us over https, which a trusted
proxy tells in X-Forwarded-Proto, and always in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.config import Settings

from ..conftest import FAST_PASSWORDS

STRONG = "s" * 40  # production refuses the demo secrets


@asynccontextmanager
async def _browser(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a browser (or a proxy) on 127.0.0.1 reaches it over plain http."""
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)  # its peer: 127.0.0.1
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as c:
            yield c


async def _is_secure(browser: httpx.AsyncClient, **headers: str) -> bool:
    browser.cookies.clear()  # a new browser: it is given a CSRF cookie
    answer = await browser.get("/sign-in", headers=headers)
    assert answer.status_code == 200
    return "; Secure" in answer.headers["set-cookie"]


async def test_behind_a_trusted_proxy_its_forwarded_proto_decides(
    pg_settings: Settings, clock: ManualClock
) -> None:
    settings = pg_settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    async with _browser(settings, clock) as browser:
        assert await _is_secure(browser, **{"X-Forwarded-Proto": "https"})
        assert not await _is_secure(browser, **{"X-Forwarded-Proto": "http"})
        assert not await _is_secure(browser)  # plain http, no word from the proxy


async def test_an_untrusted_peer_cannot_say_https(
    pg_settings: Settings, clock: ManualClock
) -> None:
    async with _browser(pg_settings, clock) as browser:
        assert not await _is_secure(browser, **{"X-Forwarded-Proto": "https"})


async def test_production_cookies_are_always_secure(
    pg_settings: Settings, clock: ManualClock
) -> None:
    settings = pg_settings.model_copy(
        update={"environment": "production", "jwt_secret": STRONG, "payment_webhook_secret": STRONG}
    )
    async with _browser(settings, clock) as browser:
        assert await _is_secure(browser)  # even over http: a deployment's proxy forgot to say
