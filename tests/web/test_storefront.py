"""The storefront in-process: public pages cached like the API's reads and free of N+1 queries,
holds made once per order form, refusals shown on the page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain.model import Role
from ticketflow.services import queries

from ..builders import API, account, app_bus, event_on_sale, hold
from ..conftest import FAST_PASSWORDS, serving
from .conftest import LOCAL, csrf_token, sign_up

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@contextmanager
def statements_counted(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    sqlalchemy_event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sqlalchemy_event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_the_home_page_reads_as_many_statements_for_20_events_as_for_one(
    browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(browser)
    organizer = await account(bus, Role.MANAGER)
    await event_on_sale(bus, organizer, totals=(10, 20), title="First")
    with statements_counted(bus.engine) as one:
        assert (await browser.get("/")).status_code == 200
    for index in range(19):
        await event_on_sale(bus, organizer, totals=(10, 20), title=f"More {index}")
    with statements_counted(bus.engine) as twenty:
        home = await browser.get("/")
    assert home.text.count('class="event-card"') == 20
    assert len(twenty) == len(one) <= 2


async def test_public_pages_answer_304_to_their_etag_and_are_the_same_for_everyone(
    browser: httpx.AsyncClient,
) -> None:
    sale = await event_on_sale(app_bus(browser), title="Cached Night")
    for path in ("/", f"/events/{sale.event.id}"):
        anonymous = await browser.get(path)
        assert anonymous.headers["cache-control"] == "public, max-age=1, stale-while-revalidate=5"
        assert "set-cookie" not in anonymous.headers
        etag = anonymous.headers["etag"]
        again = await browser.get(path, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
    await sign_up(browser, "same-bytes@example.com")
    signed_in = await browser.get(f"/events/{sale.event.id}")
    assert signed_in.content == anonymous.content  # who is signed in comes in a fragment
    # The event page's one personalised request, its order form, brings the nav along.
    assert 'hx-get="/session-nav"' not in signed_in.text
    order = await browser.get(f"/events/{sale.event.id}/order", headers={"HX-Request": "true"})
    assert 'hx-swap-oob="outerHTML"' in order.text and "My tickets" in order.text


async def test_the_event_page_is_kept_rendered_yet_as_fresh_as_the_apis_read(
    pg_settings: Settings, clock: ManualClock
) -> None:
    settings = pg_settings.model_copy(update={"availability_cache_ttl_seconds": 1.0})
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with serving(app) as browser:
        browser.base_url = httpx.URL(LOCAL)
        bus = app_bus(browser)
        sale = await event_on_sale(bus, totals=(5,))
        path, ticket_type = f"/events/{sale.event.id}", sale.ticket_types[0].id
        first = await browser.get(path)
        with statements_counted(bus.engine) as read:
            again = await browser.get(path)
        assert read == [] and again.headers["x-cache"] == "hit"  # the API's copies, no read
        assert (again.content, again.headers["etag"]) == (first.content, first.headers["etag"])
        await hold(bus, await account(bus), sale.event.id, (ticket_type, 2))
        clock.advance(1.01)  # past the availability's freshness bound
        page = await browser.get(path)
        assert f'<td data-available-for="{ticket_type}">3</td>' in page.text
        assert page.headers["etag"] != first.headers["etag"]
        api = (await browser.get(f"{API}/events/{sale.event.id}")).json()
        assert api["ticket_types"][0]["available"] == 3


async def test_the_home_page_searches_titles_and_venues(browser: httpx.AsyncClient) -> None:
    bus = app_bus(browser)
    organizer = await account(bus, Role.MANAGER)
    await event_on_sale(bus, organizer, title="Jazz Evening", venue="Blue Room")
    await event_on_sale(bus, organizer, title="Rock Night", venue="Arena 100%")
    found = (await browser.get("/", params={"q": "jazz"})).text
    assert "Jazz Evening" in found and "Rock Night" not in found
    assert "Rock Night" in (await browser.get("/", params={"q": "arena 100%"})).text
    assert "No upcoming events match" in (await browser.get("/", params={"q": "_"})).text


async def _order_form(browser: httpx.AsyncClient, event_id: object) -> tuple[str, str]:
    form = (await browser.get(f"/events/{event_id}/order")).text
    nonce = _NONCE.search(form)
    assert nonce is not None, form
    return csrf_token(form), nonce.group(1)


async def test_a_double_submitted_order_form_holds_once(browser: httpx.AsyncClient) -> None:
    bus = app_bus(browser)
    sale = await event_on_sale(bus, totals=(10,))
    await sign_up(browser, "double@example.com")
    token, nonce = await _order_form(browser, sale.event.id)
    fields = {"csrf_token": token, "nonce": nonce, f"qty-{sale.ticket_types[0].id}": "2"}
    first = await browser.post(f"/events/{sale.event.id}/hold", data=fields)
    second = await browser.post(f"/events/{sale.event.id}/hold", data=fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert first.headers["location"].startswith("/checkout/")
    async with bus.engine.connect() as db:
        assert await queries.availability(db, sale.event.id) == {sale.ticket_types[0].id: 8}
    checkout = await browser.get(first.headers["location"])
    assert checkout.status_code == 200 and "pm_card_declined" in checkout.text


async def test_an_order_form_sent_again_with_other_choices_is_told_to_reload(
    browser: httpx.AsyncClient,
) -> None:
    sale = await event_on_sale(app_bus(browser), totals=(10,))
    await sign_up(browser, "changed-mind@example.com")
    token, nonce = await _order_form(browser, sale.event.id)
    field = f"qty-{sale.ticket_types[0].id}"
    sent = {"csrf_token": token, "nonce": nonce}
    assert (
        await browser.post(f"/events/{sale.event.id}/hold", data={**sent, field: "1"})
    ).is_redirect
    again = await browser.post(f"/events/{sale.event.id}/hold", data={**sent, field: "2"})
    assert again.status_code == 422
    assert "sent before with other choices" in again.text


async def test_a_bad_quantity_is_shown_on_the_order_page_not_a_500(
    browser: httpx.AsyncClient,
) -> None:
    sale = await event_on_sale(app_bus(browser), totals=(3,), max_per_booking=2)
    await sign_up(browser, "clumsy@example.com")
    token, _ = await _order_form(browser, sale.event.id)
    field = f"qty-{sale.ticket_types[0].id}"
    for quantity, status, said in (
        ("two", 422, "whole numbers"),
        ("0", 422, "at least one ticket"),
        ("3", 422, "At most 2"),  # the ticket type's max_per_booking, said by the domain
    ):
        answer = await browser.post(
            f"/events/{sale.event.id}/hold",
            data={"csrf_token": token, "nonce": uuid.uuid4().hex, field: quantity},
        )
        assert answer.status_code == status, (quantity, answer.text)
        assert "text/html" in answer.headers["content-type"]
        assert said in answer.text, (quantity, answer.text)


async def test_a_sold_out_event_says_so_on_its_page_and_its_order_form(
    browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(browser)
    sale = await event_on_sale(bus, totals=(1,))
    buyer = await account(bus)
    await hold(bus, buyer, sale.event.id, sale.line(1))
    page = await browser.get(f"/events/{sale.event.id}")
    assert "Sold out" in page.text
    await sign_up(browser, "late@example.com")
    assert "Sold out" in (await browser.get(f"/events/{sale.event.id}/order")).text


async def test_my_bookings_needs_a_session_and_sends_the_browser_to_sign_in(
    browser: httpx.AsyncClient,
) -> None:
    answer = await browser.get("/my/bookings")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/my/bookings"


async def test_an_expired_hold_shows_as_expired_at_checkout(browser: httpx.AsyncClient) -> None:
    bus = app_bus(browser)
    sale = await event_on_sale(bus, totals=(5,))
    await sign_up(browser, "slow@example.com")
    token, nonce = await _order_form(browser, sale.event.id)
    held = await browser.post(
        f"/events/{sale.event.id}/hold",
        data={"csrf_token": token, "nonce": nonce, f"qty-{sale.ticket_types[0].id}": "1"},
    )
    clock = bus.deps.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=11).total_seconds())  # past the 10-minute hold
    checkout = await browser.get(held.headers["location"])
    assert "expired" in checkout.text


async def test_the_search_form_sent_as_browsers_send_it_finds_by_day(
    browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(browser)
    sale = await event_on_sale(bus, title="Dated Gala")
    day = sale.event.starts_at.date()
    assert "Dated Gala" in (await browser.get("/?q=&on=")).text  # empty fields: no filter
    assert "Dated Gala" in (await browser.get(f"/?q=&on={day}")).text
    assert "Dated Gala" not in (await browser.get(f"/?q=&on={day + timedelta(1)}")).text
    assert (await browser.get("/?on=someday")).status_code == 422
