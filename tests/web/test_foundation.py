"""The pages' foundation: CSRF, the session cookie and its end, security headers, error pages."""

from __future__ import annotations

import asyncio
import html
import json
import re
from html.parser import HTMLParser

import httpx

from ticketflow.adapters.clock import ManualClock

from ..builders import API, app_bus, event_on_sale
from .conftest import csrf_token, form_post, sign_up

PAGES = ("/", "/sign-in", "/sign-up", "/password-reset", "/password-reset/confirm", "/nowhere")


class _InlineCode(HTMLParser):
    """Finds what a strict CSP would block: inline scripts, style elements or attributes, and
    inline event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag}[{n}]" for n in names if n == "style" or n.startswith("on")]


async def test_a_form_sent_without_its_csrf_token_is_refused_with_a_page(
    browser: httpx.AsyncClient,
) -> None:
    await browser.get("/sign-in")  # the browser has its CSRF cookie
    refused = await browser.post("/sign-in", data={"email": "a@example.com", "password": "x"})
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "This form has expired" in refused.text
    forged = await browser.post(
        "/sign-in", data={"email": "a@example.com", "password": "x", "csrf_token": "forged"}
    )
    assert forged.status_code == 403


async def test_htmx_requests_may_send_the_csrf_token_as_a_header(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser, "htmx@example.com")
    page = (await browser.get("/my/bookings")).text
    found = re.search(r"hx-headers='([^']+)'", page)
    assert found is not None
    headers = json.loads(html.unescape(found.group(1)))
    assert (await browser.post("/sign-out")).status_code == 403
    assert (await browser.post("/sign-out", headers=headers)).status_code == 303


async def test_a_csrf_token_of_another_browser_is_refused(browser: httpx.AsyncClient) -> None:
    token = csrf_token((await browser.get("/sign-up")).text)
    browser.cookies.clear()
    await browser.get("/sign-up")  # a new browser cookie
    refused = await browser.post("/sign-up", data={"csrf_token": token, "email": "x@y.zz"})
    assert refused.status_code == 403


async def test_the_session_cookie_is_httponly_lax_and_secure_when_served_over_https(
    browser: httpx.AsyncClient,
) -> None:
    signed_up = await sign_up(browser, "cookie@example.com")
    cookie = next(
        value for value in signed_up.headers.get_list("set-cookie") if "tf_session=" in value
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # over http a browser would drop a Secure cookie
    elsewhere = await browser.get("https://shop.example.com/sign-in")
    assert "Secure" in elsewhere.headers["set-cookie"]
    plain = await browser.get("http://shop.example.com/sign-in")  # http on another host
    assert "Secure" not in plain.headers["set-cookie"]


async def test_signing_out_ends_the_login_session_itself(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, "leaver@example.com")
    cookie = browser.cookies["tf_session"]
    assert "My tickets" in (await browser.get("/session-nav")).text
    signed_out = await form_post(browser, "/session-nav", "/sign-out")
    assert signed_out.status_code == 303
    assert "Sign in" in (await browser.get("/session-nav")).text
    # The old cookie, replayed, no longer signs anyone in: its session ended.
    browser.cookies.set("tf_session", cookie)
    assert "My tickets" not in (await browser.get("/session-nav")).text


async def test_logging_out_everywhere_through_the_api_ends_the_web_session(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser, "everywhere@example.com")
    access = browser.cookies["tf_session"].split("~")[0]
    ended = await browser.post(
        f"{API}/auth/logout-all", headers={"Authorization": f"Bearer {access}"}
    )
    assert ended.status_code == 204
    assert "My tickets" not in (await browser.get("/session-nav")).text


async def test_an_expired_access_token_is_renewed_on_the_way(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser, "stayer@example.com")
    before = browser.cookies["tf_session"]
    clock = app_bus(browser).deps.clock
    assert isinstance(clock, ManualClock)
    clock.advance(20 * 60)  # past the access token's 15 minutes
    assert "My tickets" in (await browser.get("/session-nav")).text
    assert browser.cookies["tf_session"] != before


async def test_requests_noticing_an_expired_token_together_renew_it_once(
    browser: httpx.AsyncClient,
) -> None:
    """A spent refresh token used again ends its session (theft): a browser's concurrent
    requests, all with the old cookie, must not look like that."""
    await sign_up(browser, "concurrent@example.com")
    clock = app_bus(browser).deps.clock
    assert isinstance(clock, ManualClock)
    clock.advance(20 * 60)
    answers = await asyncio.gather(*(browser.get("/session-nav") for _ in range(4)))
    assert all("My tickets" in answer.text for answer in answers)
    assert "My tickets" in (await browser.get("/session-nav")).text


async def test_pages_carry_a_strict_csp_and_no_inline_code(browser: httpx.AsyncClient) -> None:
    sale = await event_on_sale(app_bus(browser), totals=(5,))
    await sign_up(browser, "csp@example.com")
    order = await browser.get(f"/events/{sale.event.id}/order")
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', order.text)
    assert nonce is not None
    held = await browser.post(
        f"/events/{sale.event.id}/hold",
        data={
            "csrf_token": csrf_token(order.text),
            "nonce": nonce.group(1),
            f"qty-{sale.ticket_types[0].id}": "1",
        },
    )
    checkout = held.headers["location"]
    booking_id = checkout.rpartition("/")[2]
    for path in (
        *PAGES,
        "/session-nav",
        f"/events/{sale.event.id}",
        f"/events/{sale.event.id}/order",
        checkout,
        "/my/bookings",
        f"/my/bookings/{booking_id}/print",
    ):
        answer = await browser.get(path)
        assert answer.status_code in (200, 404), path
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy, path
        assert "unsafe-inline" not in policy
        parser = _InlineCode()
        parser.feed(answer.text)
        assert parser.found == [], (path, parser.found)
    api = await browser.get(f"{API}/events")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


async def test_pages_stay_out_of_the_api_schema(browser: httpx.AsyncClient) -> None:
    paths = (await browser.get("/openapi.json")).json()["paths"]
    pages = {"/", "/sign-in", "/sign-up", "/session-nav", "/events/{event_id}", "/static/{hashed}"}
    assert pages.isdisjoint(paths)


async def test_an_unknown_page_is_a_page_and_an_unknown_api_path_a_problem(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/nowhere")
    assert page.status_code == 404 and "There is no such page" in page.text
    api = await browser.get(f"{API}/nowhere")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_static_files_have_content_hashed_names_and_keep_for_a_year(
    browser: httpx.AsyncClient,
) -> None:
    home = (await browser.get("/")).text
    [css] = re.findall(r'href="(/static/app\.[0-9a-f]{12}\.css)"', home)
    answer = await browser.get(css)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["content-type"].startswith("text/css")
    assert (await browser.get("/static/app.000000000000.css")).status_code == 404
