"""The admin console in a real browser: find an account and make it a manager."""

from __future__ import annotations

from playwright.async_api import Page, expect

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import PASSWORD
from .conftest import serious_accessibility_violations
from .staff import signed_in


async def test_an_admin_makes_a_user_a_manager(page: Page, shop_bus: MessageBus) -> None:
    await signed_in(page, shop_bus, Role.ADMIN)
    user = await shop_bus.handle(
        cmd.RegisterUser(f"promoted-{id(page):x}@example.com", PASSWORD, Role.USER)
    )
    await page.goto("/admin/users")
    await page.get_by_label("E-mail contains").fill(user.email)
    await page.get_by_role("button", name="Search").click()
    role = page.get_by_label(f"Role of {user.email}")
    await role.select_option("manager")
    await page.get_by_role("button", name=f"Change role of {user.email}").click()
    await expect(page.get_by_label(f"Role of {user.email}")).to_have_value("manager")
    assert await serious_accessibility_violations(page) == []
