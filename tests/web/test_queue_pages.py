"""The storefront's waiting room (issue 19) in-process: an event whose room is on sends its
buyers to join it from the order form, shows their place (the pre-queue's random order said,
tickets left and prices shown) and asks for it again when the room says, lets them order once
admitted, and sends them back to the room when their admission is refused."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain import commands as cmd
from ticketflow.services import queries

from ..builders import EventOnSale, account, app_bus, event_on_sale
from .conftest import csrf_token, sign_up
from .test_storefront import statements_counted

ROOM = {"enabled": True, "admit_per_minute": 600, "session_minutes": 10}  # 10 a second
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_PLACE = re.compile(r"^/events/[0-9a-f-]{36}/queue/([0-9a-f-]{36})$")


async def room_sale(browser: httpx.AsyncClient, clock: ManualClock, sale_in: float) -> EventOnSale:
    return await event_on_sale(
        app_bus(browser),
        totals=(20, 5),
        sales_start=clock.now() + timedelta(seconds=sale_in),
        waiting_room=ROOM,
    )


async def joined(browser: httpx.AsyncClient, event_id: UUID) -> str:
    """Join from the order form, as its button does; the place page's path."""
    form = await browser.get(f"/events/{event_id}/order")
    assert "Join the waiting room" in form.text and 'name="nonce"' not in form.text
    answer = await browser.post(
        f"/events/{event_id}/queue", data={"csrf_token": csrf_token(form.text)}
    )
    assert answer.status_code == 303, answer.text
    place = answer.headers["location"]
    assert _PLACE.match(place), place
    return str(place)


async def admitted(
    browser: httpx.AsyncClient, clock: ManualClock, sale: EventOnSale, email: str
) -> str:
    """A new buyer's place, joined and admitted (the first in line, a second after the
    opening); its page's path."""
    await sign_up(browser, email)
    place = await joined(browser, sale.event.id)
    clock.advance(1)
    assert "It's your turn" in (await browser.get(place)).text
    return place


async def hold(
    browser: httpx.AsyncClient, sale: EventOnSale, quantity: int, form: str | None = None
) -> httpx.Response:
    """Send the order form (`form`: as opened earlier; else opened now) for `quantity` of the
    first ticket type; a form without quantities (the room's) sent as if it had them."""
    form = form or (await browser.get(f"/events/{sale.event.id}/order")).text
    nonce = _NONCE.search(form)
    fields: dict[str, Any] = {
        "csrf_token": csrf_token(form),
        "nonce": nonce.group(1) if nonce else uuid.uuid4().hex,
        f"qty-{sale.ticket_types[0].id}": str(quantity),
    }
    return await browser.post(f"/events/{sale.event.id}/hold", data=fields)


async def test_a_buyer_joins_from_the_order_form_waits_is_admitted_and_orders(
    browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    sale = await room_sale(browser, clock, sale_in=0)
    await sign_up(browser, "patient@example.com")
    place = await joined(browser, sale.event.id)
    waiting = await browser.get(place)  # the sale opened this instant: nobody admitted yet
    assert waiting.status_code == 200
    assert "Your place in line: <strong>1</strong>" in waiting.text
    assert 'hx-trigger="load delay:2s"' in waiting.text  # it asks for its place again
    assert "25 tickets left" in waiting.text
    with statements_counted(app_bus(browser).engine) as statements:
        again = await browser.get(place, headers={"HX-Request": "true"})  # within a refresh
    assert "Your place in line: <strong>1</strong>" in again.text
    # The event and its tickets left come from the process's copies, as for the API's look
    # (what is read is the browser session's own check).
    assert not [sql for sql in statements if "events" in sql or "rm_availability" in sql]
    clock.advance(1)  # ten admissions earned
    admitted = await browser.get(place, headers={"HX-Request": "true"})  # the page's next look
    assert "<html" not in admitted.text  # the place alone, swapped into the page
    assert "It's your turn" in admitted.text and "hx-trigger" not in admitted.text
    assert "You can order tickets now, until" in admitted.text
    cookie = admitted.headers["set-cookie"]
    assert cookie.startswith("tf_admission_") and "Max-Age=600" in cookie  # the session left
    assert any(name.startswith("tf_admission_") for name in browser.cookies)
    held = await hold(browser, sale, 2)
    assert held.status_code == 303 and held.headers["location"].startswith("/checkout/")
    async with app_bus(browser).engine.connect() as db:
        left = await queries.availability(db, sale.event.id)
    assert left[sale.ticket_types[0].id] == 18


async def test_the_pre_queue_page_says_the_order_is_drawn_at_the_opening_with_the_prices(
    browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    sale = await room_sale(browser, clock, sale_in=600)
    await sign_up(browser, "early@example.com")
    page = await browser.get(await joined(browser, sale.event.id))
    assert "random order" in page.text and "Your place in line" not in page.text
    assert "Tickets cost €10.00 to €20.00" in page.text
    assert 'hx-trigger="load delay:30s"' in page.text  # ten minutes to go: looks seldom


async def test_a_refused_admission_sends_the_buyer_back_to_the_room_with_the_reason(
    browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    sale = await room_sale(browser, clock, sale_in=0)
    place = await admitted(browser, clock, sale, "slowpoke@example.com")
    form = await browser.get(f"/events/{sale.event.id}/order")
    assert 'name="nonce"' in form.text
    clock.advance(11 * 60)  # the session ends while the order form is open
    refused = await hold(browser, sale, 1, form.text)
    assert refused.status_code == 403
    assert "session has ended" in refused.text and "Join the waiting room" in refused.text
    expired = await browser.get(place)
    assert "Your turn has passed" in expired.text


async def test_without_an_admission_no_form_holds_and_nobody_sees_anothers_place(
    browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    sale = await room_sale(browser, clock, sale_in=0)
    await sign_up(browser, "owner@example.com")
    place = await joined(browser, sale.event.id)
    browser.cookies.clear()
    await sign_up(browser, "curious@example.com")
    assert (await browser.get(place)).status_code == 404
    sneaky = await hold(browser, sale, 1)  # the room's form, sent with a quantity anyway
    assert sneaky.status_code == 403 and "Join the waiting room" in sneaky.text


async def test_a_place_behind_more_people_than_tickets_left_is_told_so(
    browser: httpx.AsyncClient, clock: ManualClock
) -> None:
    sale = await room_sale(browser, clock, sale_in=0)  # 25 tickets; first come, first served
    bus = app_bus(browser)
    for _ in range(25):
        ahead = await account(bus)
        await bus.handle(cmd.JoinWaitingRoom(ahead.actor, sale.event.id))
    await sign_up(browser, "hopeful@example.com")
    page = (await browser.get(await joined(browser, sale.event.id))).text
    assert "Your place in line: <strong>26</strong>" in page
    assert "25 people are ahead of you and 25 tickets are left: you may not get one" in page
