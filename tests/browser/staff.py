"""For the organizer and admin browser tests: staff accounts signed in through the sign-in
page, and a buyer's paid booking made over the server's API (as a buyer's app would)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Page

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, PASSWORD


async def signed_in(page: Page, bus: MessageBus, role: Role) -> str:
    """A new account of `role`, signed in on `page`; its e-mail."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    await bus.handle(cmd.RegisterUser(email, PASSWORD, role))
    await page.goto("/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/?notice=signed-in")
    return email


async def paid_ticket_codes(
    base_url: str, event_id: str, ticket_type_id: str, quantity: int
) -> list[str]:
    """A new buyer holds and pays `quantity` tickets over the API; their codes."""
    email = f"buyer-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=f"{base_url}{API}", timeout=10) as api:
        credentials = {"email": email, "password": PASSWORD}
        assert (await api.post("/auth/register", json=credentials)).status_code == 201
        login = await api.post("/auth/login", json=credentials)
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        line = {"ticket_type_id": ticket_type_id, "quantity": quantity}
        held = await api.post("/bookings", json={"event_id": event_id, "lines": [line]})
        assert held.status_code == 201, held.text
        booking_id = held.json()["id"]
        paid = await api.post(
            f"/bookings/{booking_id}/payments",
            json={"payment_method": "pm_card_visa"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert paid.status_code in (200, 201), paid.text
        tickets = await api.get(f"/bookings/{booking_id}/tickets")
        assert tickets.status_code == 200, tickets.text
        return [ticket["code"] for ticket in tickets.json()["items"]]


@asynccontextmanager
async def another_site(html: str) -> AsyncIterator[str]:
    """A site of someone else's on a port of its own (another origin than ours, on the loopback
    address too, which chromium requires of a page that reaches us there): answers `html` to
    any request; its URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = html.encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()
