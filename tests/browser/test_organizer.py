"""The organizer's day in a real browser: create an event with a ticket type, publish it, see a
sale on the dashboard, admit a ticket at the door (and be told when it is scanned again); turn
an event's waiting room on."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

from playwright.async_api import Page, expect

from ticketflow.domain.model import Role
from ticketflow.services import queries
from ticketflow.services.messagebus import MessageBus

from ..e2e.servers import ServerProcess
from .conftest import save_screenshot, serious_accessibility_violations
from .staff import another_site, paid_ticket_codes, signed_in


async def test_an_organizer_sells_and_admits_a_ticket(
    page: Page, shop_bus: MessageBus, shop_server: ServerProcess
) -> None:
    await signed_in(page, shop_bus, Role.MANAGER)
    await page.goto("/organizer")
    await page.get_by_role("link", name="Create event").click()
    await page.get_by_label("Description").fill("Three stages by the water.")
    await _create_event(
        page, "Harbour Lights Festival", "North Quay", "2031-08-14T18:00", "2031-08-14T23:30"
    )

    await page.get_by_role("link", name="Add ticket type").click()
    await page.get_by_label("Name").fill("Early bird")
    await page.get_by_label("Price", exact=True).fill("24.50")
    await page.get_by_label("Tickets in total").fill("300")
    await page.get_by_role("button", name="Add ticket type").click()
    await page.get_by_role("button", name="Publish").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Published")
    event_id = page.url.rstrip("/").rsplit("/", 1)[1]

    ticket_type_id = await _first_ticket_type(shop_bus, event_id)
    codes = await paid_ticket_codes(shop_server.base_url, event_id, ticket_type_id, 3)
    await page.reload()
    sold = page.get_by_role("row", name=re.compile("Early bird"))
    await expect(sold).to_contain_text("€73.50")
    await expect(page.locator("svg.sales-chart")).to_be_visible()
    await save_screenshot(page, "organizer-dashboard")
    assert await serious_accessibility_violations(page) == []
    await _shows_in_a_widget_on_another_site(page, shop_server.base_url, event_id)

    await page.get_by_role("link", name="Check-in", exact=True).click()
    code = page.get_by_label("Ticket code")
    await expect(code).to_be_focused()
    await code.fill(codes[0])
    await code.press("Enter")
    await expect(page.locator(".scan-admitted")).to_contain_text("Admitted")
    await expect(code).to_be_focused()  # emptied, ready for the next scan
    await code.fill(codes[0])
    await code.press("Enter")
    await expect(page.locator(".scan-refused")).to_contain_text(
        re.compile(r"Already admitted at \d\d:\d\d:\d\d")
    )
    await save_screenshot(page, "organizer-check-in")
    assert await serious_accessibility_violations(page) == []


async def test_an_organizer_turns_the_waiting_room_on(
    page: Page, shop_bus: MessageBus, tmp_path: Path
) -> None:
    await signed_in(page, shop_bus, Role.MANAGER)
    await page.goto("/organizer/events/new")
    await page.get_by_label("Sales open (UTC)").fill("2031-09-01T10:00")
    await _create_event(
        page, "Midnight Ferry Sessions", "Pier 4", "2031-09-20T20:00", "2031-09-20T23:00"
    )
    await expect(page.locator("#room-state")).to_have_text("Waiting room off")

    await page.get_by_role("link", name="Waiting room", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Waiting room")
    await page.get_by_label("Waiting room on").check()
    await page.get_by_label("Pre-queue opens (UTC)").fill("2031-09-01T09:30")
    await page.get_by_label("Admit per minute").fill("200")
    await expect(page.get_by_label("Session minutes")).to_have_value("10")
    await page.screenshot(path=tmp_path / "waiting-room.png", full_page=True)
    assert await serious_accessibility_violations(page) == []
    await page.get_by_role("button", name="Save waiting room").click()

    await expect(page.get_by_role("heading", level=1)).to_contain_text("Midnight Ferry Sessions")
    await expect(page.locator("#room-state")).to_have_text(
        "Waiting room on: 200 a minute, session 10 min, pre-queue from Mon 1 Sep 2031, 09:30 UTC"
    )
    await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)


async def _create_event(page: Page, title: str, venue: str, starts_at: str, ends_at: str) -> None:
    """Fill in the rest of the open event form and send it."""
    await page.get_by_label("Title").fill(title)
    await page.get_by_label("Venue").fill(venue)
    await page.get_by_label("Starts (UTC)").fill(starts_at)
    await page.get_by_label("Ends (UTC)").fill(ends_at)
    await page.get_by_role("button", name="Create event").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(title)


async def _first_ticket_type(bus: MessageBus, event_id: str) -> str:
    async with bus.engine.connect() as db:
        event = await queries.event_row(db, UUID(event_id))
    assert event is not None
    return str(event["ticket_types"][0]["id"])


async def _shows_in_a_widget_on_another_site(page: Page, base_url: str, event_id: str) -> None:
    """Another site's page includes /widget.js: the framed tickets show what is left."""
    html = (
        f'<!doctype html><title>Friends</title><h1>Friends of the Quay</h1><script src="{base_url}'
        f'/widget.js" data-event="{event_id}" async></script>'
    )
    async with another_site(html) as site:
        elsewhere = await page.context.new_page()
        await elsewhere.goto(site)
        widget = elsewhere.frame_locator("iframe")
        row = widget.get_by_role("row", name=re.compile("Early bird"))
        await expect(row).to_contain_text("297")
        buy = widget.get_by_role("link", name="Buy tickets")
        await expect(buy).to_have_attribute("target", "_top")
        await elsewhere.close()
