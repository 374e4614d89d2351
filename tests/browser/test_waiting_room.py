"""A buyer in a real browser in front of an on-sale with its waiting room on: joins from the
event's page before the sale opens, is told the order is drawn at the opening, lets the page
look again by itself until admitted, then orders."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from playwright.async_api import Page, expect

from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, account, event_on_sale
from ..e2e.servers import ServerProcess
from .conftest import save_screenshot, serious_accessibility_violations

PASSWORD = "correct-horse-battery"
OPENS_IN = timedelta(seconds=6)  # time to sign up and join before the opening
ADMITTED_WITHIN_MS = 30_000  # the opening, then the page's next look (a few seconds)


async def test_a_buyer_waits_in_the_room_until_admitted_then_orders(
    page: Page, shop_bus: MessageBus, shop_server: ServerProcess
) -> None:
    organizer = await account(shop_bus, Role.MANAGER)
    sale = await event_on_sale(
        shop_bus,
        organizer,
        totals=(40, 10),
        title=f"Midnight Chorus {uuid.uuid4().hex[:6]}",
        venue="Old Gasworks",
        sales_start=shop_bus.deps.clock.now() + OPENS_IN,
    )
    # The room is turned on through the server itself: an embedded server keeps its rooms'
    # lines in its own process, opened when it is configured there.
    room = {"enabled": True, "admit_per_minute": 600, "session_minutes": 10}
    async with httpx.AsyncClient(base_url=shop_server.base_url) as api:
        turned_on = await api.patch(
            f"{API}/events/{sale.event.id}",
            json={"waiting_room": room},
            headers=organizer.headers,
        )
        assert turned_on.status_code == 200, turned_on.text
    await page.goto("/sign-up")
    await page.get_by_label("E-mail").fill(f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("status")).to_contain_text("you are signed in")
    await page.goto(f"/events/{sale.event.id}")
    await page.get_by_role("button", name="Join the waiting room").click()
    await expect(page.get_by_text("You are in the waiting room")).to_be_visible()
    await expect(page.get_by_text("Tickets cost €10.00 to €20.00")).to_be_visible()
    assert await serious_accessibility_violations(page) == []
    await save_screenshot(page, "waiting-room")
    # Nobody clicks: the page looks again by itself, and the room admits after the opening.
    await expect(page.get_by_text("It's your turn")).to_be_visible(timeout=ADMITTED_WITHIN_MS)
    assert await serious_accessibility_violations(page) == []
    await save_screenshot(page, "waiting-room-admitted")
    await page.get_by_role("link", name="Choose tickets").click()
    await page.get_by_label("Tier 0").fill("2")
    await page.get_by_role("button", name="Hold tickets and check out").click()
    await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
