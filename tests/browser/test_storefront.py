"""A buyer in a real browser: find an event, hold tickets, pay with a sandbox card, see the QR
codes; sold out, the hold's countdown, a declined card; accessible and phone-sized throughout."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Page, expect

from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import EventOnSale, account, event_on_sale, hold
from .conftest import save_screenshot, serious_accessibility_violations

PASSWORD = "correct-horse-battery"


async def _sale(bus: MessageBus, **fields: object) -> EventOnSale:
    organizer = await account(bus, Role.MANAGER)
    return await event_on_sale(
        bus,
        organizer,
        **{
            "title": f"Harbour Lights {uuid.uuid4().hex[:6]}",
            "venue": "Pier 9 Concert Hall",
            "description": "An evening of songs by the water.",
            **fields,
        },
    )


async def _sign_up(page: Page, next_path: str = "/") -> None:
    await page.goto("/sign-up")
    await page.get_by_label("E-mail").fill(f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("status")).to_contain_text("you are signed in")
    if next_path != "/":
        await page.goto(next_path)


async def _no_horizontal_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, page.url


async def test_a_buyer_buys_two_tickets_and_sees_their_qr_codes(
    page: Page, shop_bus: MessageBus
) -> None:
    sale = await _sale(shop_bus, totals=(120, 40))
    await _sign_up(page)
    await page.get_by_role("searchbox", name="Title or venue").fill(sale.event.title)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=sale.event.title).click()
    await expect(page.get_by_role("heading", name="Choose your tickets")).to_be_visible()
    await expect(page.get_by_role("link", name="My tickets")).to_be_visible()  # came along
    assert await serious_accessibility_violations(page) == []
    await save_screenshot(page, "event")
    await page.get_by_label("Tier 0").fill("2")
    await page.get_by_role("button", name="Hold tickets and check out").click()
    await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    await expect(page.locator(".countdown-left")).to_have_text(re.compile(r"\(\d+:\d\d left\)"))
    assert await serious_accessibility_violations(page) == []
    await save_screenshot(page, "checkout")
    await page.get_by_role("button", name=re.compile("^Pay ")).click()
    await expect(page.get_by_role("status")).to_contain_text("Payment received")
    await expect(page.get_by_role("img", name=re.compile("QR code of ticket"))).to_have_count(2)
    assert await serious_accessibility_violations(page) == []
    await save_screenshot(page, "my-tickets")
    await page.set_viewport_size({"width": 360, "height": 740})
    await _no_horizontal_scroll(page)
    await page.get_by_role("link", name="Print tickets").click()
    await expect(page.get_by_role("img", name=re.compile("QR code of ticket"))).to_have_count(2)


async def test_a_declined_card_keeps_the_hold_and_says_why(
    page: Page, shop_bus: MessageBus
) -> None:
    sale = await _sale(shop_bus, totals=(10,))
    await _sign_up(page, f"/events/{sale.event.id}")
    await page.get_by_label("Tier 0").fill("1")
    await page.get_by_role("button", name="Hold tickets and check out").click()
    await page.get_by_label(re.compile("pm_card_declined")).check()
    await page.get_by_role("button", name=re.compile("^Pay ")).click()
    await expect(page.get_by_role("alert")).to_contain_text("declined")
    # Still held: the buyer pays with another card.
    await page.get_by_label(re.compile("pm_card_visa")).check()
    await page.get_by_role("button", name=re.compile("^Pay ")).click()
    await expect(page.get_by_role("status")).to_contain_text("Payment received")


async def test_a_sold_out_event_says_so_live_and_a_phone_screen_fits_it(
    page: Page, shop_bus: MessageBus
) -> None:
    sale = await _sale(shop_bus, totals=(2,))
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(f"/events/{sale.event.id}")
    left = page.locator(f'[data-available-for="{sale.ticket_types[0].id}"]')
    await expect(left).to_have_text("2")
    await hold(shop_bus, await account(shop_bus), sale.event.id, sale.line(2))
    # No reload: the page follows the event's live availability feed.
    await expect(left).to_have_text("Sold out")
    await _sign_up(page, f"/events/{sale.event.id}")
    await expect(page.locator("#order-form").get_by_text("Sold out")).to_be_visible()
    await _no_horizontal_scroll(page)
    assert await serious_accessibility_violations(page) == []


async def test_a_form_posted_without_its_csrf_token_is_refused_and_holds_nothing(
    page: Page, shop_bus: MessageBus
) -> None:
    sale = await _sale(shop_bus, totals=(50,))
    await _sign_up(page, f"/events/{sale.event.id}")
    await expect(page.get_by_role("heading", name="Choose your tickets")).to_be_visible()
    # What a forged form on another site would send: the signed-in cookie, no token.
    await page.evaluate("() => document.querySelector('#order-form [name=csrf_token]').remove()")
    await page.get_by_label("Tier 0").fill("2")
    await page.get_by_role("button", name="Hold tickets and check out").click()
    await expect(page.get_by_role("heading", name="This form has expired")).to_be_visible()
    await page.goto("/my/bookings")
    await expect(page.get_by_text("No bookings yet.")).to_be_visible()
