"""The organizer's webhook pages in-process: register (the secret shown once), refusals next to
their fields, the delivery log, delete; another organizer's endpoint is not there."""

from __future__ import annotations

import re

import httpx

from ticketflow.domain.model import Role

from .conftest import csrf_token, form_post
from .staff import sign_in_as

HOOK = "http://127.0.0.1:9/hooks"  # the tests' settings allow private addresses


async def test_an_organizer_registers_sees_and_deletes_a_webhook(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.MANAGER)
    registered = await browser.post(
        "/organizer/webhooks",
        data={
            "csrf_token": csrf_token((await browser.get("/organizer/webhooks")).text),
            "url": HOOK,
            "event_types": ["booking.confirmed", "event.cancelled"],
        },
    )
    assert registered.status_code == 201, registered.text
    assert re.search(r"whsec_[\w-]+", registered.text)
    listed = (await browser.get("/organizer/webhooks")).text
    assert HOOK in listed and "booking.confirmed, event.cancelled" in listed
    assert "whsec_" not in listed  # shown once
    [webhook_id] = re.findall(r'href="/organizer/webhooks/([0-9a-f-]{36})"', listed)
    log = await browser.get(f"/organizer/webhooks/{webhook_id}")
    assert log.status_code == 200 and "Nothing delivered yet" in log.text

    browser.cookies.clear()
    await sign_in_as(browser, Role.MANAGER)  # another organizer
    assert (await browser.get(f"/organizer/webhooks/{webhook_id}")).status_code == 404
    assert HOOK not in (await browser.get("/organizer/webhooks")).text


async def test_a_webhook_form_says_what_is_wrong_next_to_its_fields(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in_as(browser, Role.MANAGER)
    refused = await form_post(
        browser, "/organizer/webhooks", "/organizer/webhooks", url="ftp://example.com"
    )
    assert refused.status_code == 422
    assert 'id="url-error"' in refused.text and 'id="event_types-error"' in refused.text
    assert "Choose at least one." in refused.text
    assert 'value="ftp://example.com"' in refused.text


async def test_deleting_a_webhook_takes_it_off_the_list(browser: httpx.AsyncClient) -> None:
    await sign_in_as(browser, Role.MANAGER)
    page = (await browser.get("/organizer/webhooks")).text
    await browser.post(
        "/organizer/webhooks",
        data={"csrf_token": csrf_token(page), "url": HOOK, "event_types": ["booking.held"]},
    )
    listed = (await browser.get("/organizer/webhooks")).text
    [webhook_id] = re.findall(r'href="/organizer/webhooks/([0-9a-f-]{36})"', listed)
    deleted = await form_post(
        browser, "/organizer/webhooks", f"/organizer/webhooks/{webhook_id}/delete"
    )
    assert deleted.status_code == 303
    assert "No webhook endpoints yet" in (await browser.get("/organizer/webhooks")).text
