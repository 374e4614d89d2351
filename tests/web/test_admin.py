"""The admin console in-process: admins only, the account search and its changes, the audit
trail's filters, with every event's data escaped."""

from __future__ import annotations

import httpx

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role

from ..builders import account, app_bus, event_on_sale
from ..integration.paid_bookings import paid_booking
from .conftest import form_post
from .staff import paying_browser, sign_in_as
from .test_foundation import _InlineCode

__all__ = ["paying_browser"]  # a fixture of tests/web/staff.py


async def test_a_manager_gets_a_403_page_on_the_admin_pages(browser: httpx.AsyncClient) -> None:
    await sign_in_as(browser, Role.MANAGER)
    for path in ("/admin/users", "/admin/audit"):
        refused = await browser.get(path)
        assert refused.status_code == 403, path
        assert "Your account may not see this page" in refused.text


async def test_an_admin_finds_an_account_makes_it_a_manager_and_disables_it(
    browser: httpx.AsyncClient,
) -> None:
    admin = await sign_in_as(browser, Role.ADMIN)
    user = await account(app_bus(browser), Role.USER)
    await account(app_bus(browser), Role.USER)  # someone the search leaves out
    search = f"/admin/users?email={user.email[:15]}"
    found = (await browser.get(search)).text
    assert user.email in found and found.count("Change role") == 1
    action = f"/admin/users/{user.actor.user_id}"
    changed = await form_post(browser, search, action, role="manager", back=search)
    assert changed.status_code == 303 and changed.headers["location"] == search
    disabled = await form_post(browser, search, action, disabled="true", back="https://evil.test")
    assert disabled.headers["location"] == "/admin/users"  # only back to the list
    page = (await browser.get(search)).text
    assert 'value="manager" selected' in page and "Disabled" in page
    # An admin can't disable themselves: the handler says so, as a page.
    refused = await form_post(
        browser, "/admin/users", f"/admin/users/{admin.actor.user_id}", disabled="true"
    )
    assert refused.status_code == 409


async def test_the_audit_log_filters_and_shows_event_data_escaped(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.ADMIN)
    bus = app_bus(browser)
    sale = await event_on_sale(bus, title="<script>alert(1)</script>")
    await bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    page = await browser.get(f"/admin/audit?stream_id={sale.event.id}")
    assert page.status_code == 200
    assert "event.created" in page.text and "event.cancelled" in page.text
    assert "ticket_type.added" not in page.text  # another stream
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(1)" in page.text
    by_type = (await browser.get("/admin/audit?type=event.cancelled")).text
    assert "event.cancelled" in by_type and "event.created" not in by_type
    wrong = await browser.get("/admin/audit?actor_id=nobody")
    assert wrong.status_code == 422 and 'id="actor_id-error"' in wrong.text


async def test_the_staff_pages_carry_no_inline_code_for_the_csp_to_block(
    paying_browser: httpx.AsyncClient,
) -> None:
    bus = app_bus(paying_browser)
    admin = await sign_in_as(paying_browser, Role.ADMIN)
    sale = await event_on_sale(bus, admin)
    await paid_booking(bus, await account(bus, Role.USER), sale, 1)
    base = f"/organizer/events/{sale.event.id}"
    for path in (
        *("/organizer", base, f"{base}/edit", f"{base}/cancel", f"{base}/check-in"),
        *(f"{base}/ticket-types/new", "/organizer/webhooks", "/organizer/events/new"),
        *("/admin/users", "/admin/audit", f"/widget/events/{sale.event.id}"),
    ):
        answer = await paying_browser.get(path)
        assert answer.status_code == 200, path
        parser = _InlineCode()
        parser.feed(answer.text)
        assert parser.found == [], (path, parser.found)
