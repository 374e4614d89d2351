"""The organizer's pages in-process: who may see them, the event and ticket type forms and their
refusals, the sales dashboard (and its query count), and the check-in answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role

from ..builders import account, app_bus, event_on_sale
from ..integration.paid_bookings import paid_booking, ticket_codes
from .conftest import csrf_token, form_post
from .staff import paying_browser, sign_in_as

__all__ = ["paying_browser"]  # a fixture of tests/web/staff.py

EVENT_FORM = {
    "title": "Jazz <Night>",
    "description": "Bring friends",
    "venue": "Hall B",
    "starts_at": "2026-07-01T19:30",
    "ends_at": "2026-07-01T23:00",
    "sales_start": "",
    "sales_end": "",
    "max_tickets_per_buyer": "6",
    "refund_deadline": "",
}
TICKET_TYPE_FORM = {
    "name": "Standing",
    "price": "12.50",
    "currency": "eur",
    "total": "200",
    "max_per_booking": "4",
    "max_per_buyer": "",
}


async def test_a_buyer_gets_a_403_page_on_the_organizer_pages(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.USER)
    for path in ("/organizer", "/organizer/events/new", "/organizer/webhooks"):
        refused = await browser.get(path)
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]
    browser.cookies.clear()
    assert (await browser.get("/organizer")).headers["location"] == "/sign-in?next=/organizer"


async def test_another_managers_event_is_not_there_for_a_manager(
    browser: httpx.AsyncClient,
) -> None:
    sale = await event_on_sale(app_bus(browser))
    await sign_in_as(browser, Role.MANAGER)
    event_id = sale.event.id
    for path in ("", "/edit", "/cancel", "/check-in", "/ticket-types/new"):
        assert (await browser.get(f"/organizer/events/{event_id}{path}")).status_code == 404
    token = csrf_token((await browser.get("/organizer")).text)
    cancelled = await browser.post(
        f"/organizer/events/{event_id}/cancel", data={"csrf_token": token}
    )
    assert cancelled.status_code == 403  # the handler's refusal, as a page
    assert "Not allowed" in cancelled.text


async def test_a_form_without_its_csrf_token_changes_nothing(browser: httpx.AsyncClient) -> None:
    await sign_in_as(browser, Role.MANAGER)
    refused = await browser.post("/organizer/events", data=EVENT_FORM)
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    assert "You have no events yet" in (await browser.get("/organizer")).text


async def test_an_organizer_creates_an_event_adds_a_ticket_type_and_publishes(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.MANAGER)
    created = await form_post(browser, "/organizer/events/new", "/organizer/events", **EVENT_FORM)
    assert created.status_code == 303, created.text
    dashboard = created.headers["location"]
    page = (await browser.get(dashboard)).text
    assert "Jazz &lt;Night&gt;" in page and "Draft" in page
    added = await form_post(
        browser, f"{dashboard}/ticket-types/new", f"{dashboard}/ticket-types", **TICKET_TYPE_FORM
    )
    assert added.status_code == 303, added.text
    published = await form_post(browser, dashboard, f"{dashboard}/publish")
    assert published.status_code == 303
    page = (await browser.get(dashboard)).text
    assert "Published" in page and "Standing" in page and "€12.50" in page
    assert "/widget.js" in page and "data-event=" in page
    listed = (await browser.get("/organizer")).text
    assert "Jazz &lt;Night&gt;" in listed and "Wed 1 Jul 2026, 19:30 UTC" in listed


async def test_the_event_form_says_what_is_wrong_next_to_each_field(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.MANAGER)
    wrong = {**EVENT_FORM, "title": "  ", "starts_at": "", "max_tickets_per_buyer": "many"}
    refused = await form_post(browser, "/organizer/events/new", "/organizer/events", **wrong)
    assert refused.status_code == 422
    for field in ("title", "starts_at", "max_tickets_per_buyer"):
        assert f'id="{field}-error"' in refused.text, field
    assert 'value="Hall B"' in refused.text  # what was typed stays
    backwards = {**EVENT_FORM, "ends_at": "2026-07-01T18:00"}
    refused = await form_post(browser, "/organizer/events/new", "/organizer/events", **backwards)
    assert refused.status_code == 422  # the domain's refusal, next to its field
    assert 'id="ends_at-error"' in refused.text


async def test_the_ticket_type_form_refuses_a_price_with_too_many_decimals(
    browser: httpx.AsyncClient,
) -> None:
    manager = await sign_in_as(browser, Role.MANAGER)
    sale = await event_on_sale(app_bus(browser), manager, publish=False)
    base = f"/organizer/events/{sale.event.id}"
    for price, message in (("12.505", "at most 2 decimals"), ("twelve", "such as 12.50")):
        refused = await form_post(
            browser,
            f"{base}/ticket-types/new",
            f"{base}/ticket-types",
            **{**TICKET_TYPE_FORM, "price": price},
        )
        assert refused.status_code == 422
        assert 'id="price-error"' in refused.text and message in refused.text
    edited = await form_post(
        browser,
        f"{base}/ticket-types/{sale.ticket_types[0].id}/edit",
        f"{base}/ticket-types/{sale.ticket_types[0].id}/edit",
        **{**TICKET_TYPE_FORM, "total": "150"},
    )
    assert edited.status_code == 303, edited.text
    assert "150" in (await browser.get(base)).text


async def test_cancelling_asks_first_then_cancels(browser: httpx.AsyncClient) -> None:
    manager = await sign_in_as(browser, Role.MANAGER)
    sale = await event_on_sale(app_bus(browser), manager)
    base = f"/organizer/events/{sale.event.id}"
    asked = await browser.get(f"{base}/cancel")
    assert "can&#39;t be undone" in asked.text or "can't be undone" in asked.text
    cancelled = await form_post(browser, f"{base}/cancel", f"{base}/cancel")
    assert cancelled.status_code == 303
    assert "Cancelled" in (await browser.get(base)).text


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa_event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_the_dashboard_reads_as_much_for_one_ticket_type_as_for_eight(
    paying_browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(paying_browser)
    manager = await sign_in_as(paying_browser, Role.MANAGER)
    buyer = await account(bus, Role.USER)
    counts = []
    for totals in ((10,), (10,) * 8):
        sale = await event_on_sale(bus, manager, totals=totals)
        await paid_booking(bus, buyer, sale, 2)
        await paying_browser.get(f"/organizer/events/{sale.event.id}")  # warm
        with counted_statements(bus.engine) as statements:
            page = await paying_browser.get(f"/organizer/events/{sale.event.id}")
        assert page.status_code == 200
        assert "Tickets sold per hour" in page.text and "<svg" in page.text
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


async def test_the_door_admits_a_ticket_once_and_says_why_it_refuses(
    paying_browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(paying_browser)
    manager = await sign_in_as(paying_browser, Role.MANAGER)
    sale = await event_on_sale(bus, manager)
    booking_id = await paid_booking(bus, await account(bus, Role.USER), sale, 2)
    first, second = await ticket_codes(bus, booking_id)
    door = f"/organizer/events/{sale.event.id}/check-in"
    page = await paying_browser.get(door)
    assert "autofocus" in page.text
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf_token(page.text)}

    async def scan(code: str) -> str:
        answer = await paying_browser.post(door, data={"code": code}, headers=htmx)
        assert answer.status_code == 200
        assert "<html" not in answer.text  # a fragment
        return answer.text

    assert "Admitted" in await scan(first)
    assert re.search(r"Already admitted at \d\d:\d\d:\d\d", await scan(first))
    assert "Not a ticket of this event" in await scan("NOPE1234")
    await bus.handle(cmd.RefundBooking(manager.actor, booking_id))
    assert "Ticket void" in await scan(second)
    # Without JavaScript: the whole page, with the answer.
    whole = await form_post(paying_browser, door, door, code=first)
    assert "<html" in whole.text and "Ticket void" in whole.text  # the refund voided both


async def test_the_edit_form_shows_the_event_in_utc_and_saves_changes(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.MANAGER)
    created = await form_post(browser, "/organizer/events/new", "/organizer/events", **EVENT_FORM)
    edit = f"{created.headers['location']}/edit"
    form = (await browser.get(edit)).text
    assert 'value="2026-07-01T19:30"' in form and 'value="6"' in form
    saved = await form_post(
        browser, edit, edit, **{**EVENT_FORM, "title": "Jazz Night", "max_tickets_per_buyer": ""}
    )
    assert saved.status_code == 303, saved.text
    form = (await browser.get(edit)).text
    assert (
        'value="Jazz Night"' in form
        and 'id="max_tickets_per_buyer" name="max_tickets_per_buyer" type="number" value=""' in form
    )
