"""Browser tests: a real `ticketflow serve` (with the sandbox payment provider) on a PostgreSQL
database of its own, driven by Debian's chromium through Playwright.

The server and the browser live for the whole session (starting them is most of the cost);
each test gets a fresh browser context (no cookies), and seeds what it needs over a bus of its own
on the server's database, with data nobody else's test will match.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from ticketflow.bootstrap import build_bus
from ticketflow.services.messagebus import MessageBus

from ..conftest import FAST_PASSWORDS, migrated_database, settings_for
from ..e2e.servers import ServerProcess, running_provider, running_servers, server_env

CHROMIUM = "/usr/bin/chromium"
JWT_SECRET = "browser-test-secret-never-used-outside-tests"
REPOSITORY = Path(__file__).parents[2]
# Where `save_screenshot` writes: a temporary directory unless this names one (relative to the
# repository), e.g. `TICKETFLOW_SCREENSHOTS=docs/screenshots` to renew the README's pictures.
SCREENSHOTS_VARIABLE = "TICKETFLOW_SCREENSHOTS"


@pytest.fixture(scope="session")
def browser_database_url() -> Iterator[str]:
    """A database for the browser tests alone: the other tests wipe theirs between tests, and a
    server process keeps copies of what it read."""
    with migrated_database("ticketflow_browser") as url:
        yield url


@pytest.fixture(scope="session")
async def shop_server(
    browser_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerProcess]:
    """`ticketflow serve` with the sweeper on (expired holds go back on sale) and the sandbox
    provider beside it."""
    logs = tmp_path_factory.mktemp("browser-servers")
    async with running_provider(logs / "ledger.db", logs) as provider:
        env = server_env(
            browser_database_url,
            JWT_SECRET,
            payment_provider_url=provider.base_url,
            availability_cache_ttl_seconds=0,
            shutdown_grace_seconds=1,  # nothing to finish: the test is over
        )
        async with running_servers(1, env, logs) as [server]:
            yield server


@pytest.fixture(scope="session")
async def shop_bus(browser_database_url: str) -> AsyncIterator[MessageBus]:
    """A bus on the server's database, for seeding events and reading what the pages did."""
    bus = build_bus(settings_for(browser_database_url, jwt_secret=JWT_SECRET), None, FAST_PASSWORDS)
    try:
        yield bus
    finally:
        await bus.deps.payments.aclose()
        await bus.engine.dispose()


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, shop_server: ServerProcess) -> AsyncIterator[Page]:
    """A fresh tab of a fresh browser profile (no cookies) on the shop. Whatever our CSP
    blocked while the test ran (an inline script or style slipped in) fails it."""
    context = await browser.new_context(base_url=shop_server.base_url)
    context.set_default_timeout(10_000)
    blocked: list[str] = []
    try:
        tab = await context.new_page()
        tab.on(
            "console",
            lambda message: (
                blocked.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield tab
    finally:
        await context.close()
    assert blocked == []


AXE_SOURCE = Path(__file__).with_name("axe.min.js")


async def serious_accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it stands. axe is evaluated
    through the DevTools protocol, which our CSP (no inline scripts) does not apply to."""
    await page.evaluate(AXE_SOURCE.read_text())
    found: list[dict[str, object]] = await page.evaluate(
        """async () => (await axe.run(document)).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))"""
    )
    return [f"{v['id']}: {v['help']} at {v['nodes']}" for v in found]


_screenshots: dict[str, Path] = {}  # "dir": set once per session by `screenshots_dir`


@pytest.fixture(scope="session", autouse=True)
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory, so that a test run leaves the repository as it was; the one
    `TICKETFLOW_SCREENSHOTS` names when set (the README's are docs/screenshots/)."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    folder = REPOSITORY / chosen if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _screenshots["dir"] = folder
    return folder


async def save_screenshot(page: Page, name: str) -> Path:
    """The whole page as `<name>.png` in the run's screenshot directory (see `screenshots_dir`),
    overwritten each run."""
    path = _screenshots["dir"] / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
