"""The embeddable widget: its script, and its page, the one page other sites may frame, cached
like the public pages."""

from __future__ import annotations

import httpx

from ..builders import app_bus, event_on_sale


async def test_the_widget_page_may_be_framed_anywhere_and_is_cached(
    browser: httpx.AsyncClient,
) -> None:
    sale = await event_on_sale(app_bus(browser))
    answer = await browser.get(f"/widget/events/{sale.event.id}")
    assert answer.status_code == 200
    assert "frame-ancestors *" in answer.headers["content-security-policy"]
    assert "x-frame-options" not in answer.headers
    assert answer.headers["cache-control"].startswith("public")
    assert "Tier 0" in answer.text and "€10.00" in answer.text
    assert f'href="/events/{sale.event.id}" target="_top"' in answer.text
    again = await browser.get(
        f"/widget/events/{sale.event.id}", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304
    # Every other page keeps refusing to be framed.
    event_page = await browser.get(f"/events/{sale.event.id}")
    assert "frame-ancestors 'none'" in event_page.headers["content-security-policy"]
    assert event_page.headers["x-frame-options"] == "DENY"


async def test_a_draft_has_no_widget(browser: httpx.AsyncClient) -> None:
    sale = await event_on_sale(app_bus(browser), publish=False)
    assert (await browser.get(f"/widget/events/{sale.event.id}")).status_code == 404


async def test_the_widget_script_is_cacheable_and_revalidated_by_its_etag(
    browser: httpx.AsyncClient,
) -> None:
    script = await browser.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "public, max-age=3600"
    assert "/widget/events/" in script.text
    again = await browser.get("/widget.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
