"""The web foundation in a real browser: htmx under our CSP, sign-up and the signed-in nav,
accessibility, and a phone-sized screen."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, expect

from .conftest import serious_accessibility_violations

PASSWORD = "correct-horse-battery"


async def test_a_visitor_signs_up_and_the_nav_says_so(page: Page) -> None:
    await page.goto("/")
    await page.get_by_role("link", name="Sign up").click()
    await page.get_by_label("E-mail").fill(f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("status")).to_contain_text("you are signed in")
    # The public home page learns who is signed in from its htmx fragment.
    await expect(page.get_by_role("link", name="My tickets")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_contain_text("signed out")
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()


async def test_the_sign_up_form_says_what_is_wrong_next_to_the_field(page: Page) -> None:
    await page.goto("/sign-up")
    await page.get_by_label("E-mail").fill(f"short-{uuid.uuid4().hex[:8]}@example.com")
    await page.get_by_label("Password").fill("abc")  # the policy wants 10 characters at least
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("#password-error")).to_contain_text("at least 10")
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert await serious_accessibility_violations(page) == []


async def test_the_home_page_fits_a_360_pixel_screen(page: Page) -> None:
    await page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/", "/sign-in", "/sign-up"):
        await page.goto(path)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, path
    assert await serious_accessibility_violations(page) == []
