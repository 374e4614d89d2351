"""Webhooks go outside our network only (SSRF): refused at registration naming the field, checked
again at each delivery with the connection pinned to the checked address, and one bad endpoint
never holds up the others' deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.outbound_targets import resolve
from ticketflow.api.app import create_app
from ticketflow.bootstrap import HANDLERS
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.webhook_delivery import WebhookSender
from ticketflow.services.webhook_endpoints import register_webhook

from ..builders import account, app_bus, error_fields, event_on_sale, problem
from ..conftest import FAST_PASSWORDS, serving
from .webhook_receiver import webhook_receiver
from .webhook_steps import HOOKS, deliveries, fan_out, register

PUBLIC = "93.184.216.34"


@pytest.fixture
async def guarded(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app as deployed: private networks not allowed, at most 2 endpoints per organizer."""
    settings = settings.model_copy(
        update={"webhook_allow_private_networks": False, "webhook_max_endpoints_per_owner": 2}
    )
    async with serving(create_app(settings, clock, FAST_PASSWORDS)) as client:
        yield client


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://localhost:5432/", "resolves to a loopback address"),  # a name for 127.0.0.1
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.5/hooks", "private"),
        ("http://100.64.1.1/hooks", "CGNAT"),
        ("http://[::1]:8080/hooks", "loopback"),
        ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
        ("http://0.0.0.0:8000/hooks", "unspecified"),
        ("http://224.0.0.1/hooks", "multicast"),
        ("http://999.999.999.999/hooks", "not a valid IPv4 address"),
        ("http://nowhere.invalid/hooks", "does not resolve"),
    ],
)
async def test_inside_addresses_and_invalid_hosts_are_refused_naming_the_url(
    guarded: httpx.AsyncClient, url: str, why: str
) -> None:
    organizer = await account(app_bus(guarded), Role.MANAGER)
    response = await guarded.post(
        HOOKS, json={"url": url, "event_types": ["booking.held"]}, headers=organizer.headers
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"url"}
    assert why in response.json()["detail"]


async def test_a_public_address_is_taken_and_an_organizer_has_at_most_the_limit(
    guarded: httpx.AsyncClient,
) -> None:
    organizer = await account(app_bus(guarded), Role.MANAGER)
    first = await register(guarded, organizer, f"https://{PUBLIC}/hooks", "booking.held")
    await register(guarded, organizer, f"https://{PUBLIC}/other", "booking.held")
    third = {"url": f"https://{PUBLIC}/third", "event_types": ["booking.held"]}
    refused = problem(await guarded.post(HOOKS, json=third, headers=organizer.headers), 409)
    assert refused["type"].endswith(":limit-reached")
    assert "2 webhook endpoints" in refused["detail"]
    deleted = await guarded.delete(f"{HOOKS}/{first['id']}", headers=organizer.headers)
    assert deleted.status_code == 204
    assert (await guarded.post(HOOKS, json=third, headers=organizer.headers)).status_code == 201


async def test_a_name_rebound_to_our_network_after_registration_is_not_delivered_to(
    guarded: httpx.AsyncClient,
) -> None:
    bus = app_bus(guarded)
    organizer = await account(bus, Role.MANAGER)
    async with webhook_receiver() as receiver, httpx.AsyncClient() as http:
        port = httpx.URL(receiver.url).port
        rebound = f"http://rebind.example:{port}/hooks"

        async def public_then(host: str, port: int) -> list[str]:
            return [PUBLIC]

        async def inside_now(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]  # where the receiver listens: it must hear nothing

        registering = partial(register_webhook, resolver=public_then)  # DNS, as it was then
        then = MessageBus(bus.engine, bus.deps, {**HANDLERS, cmd.RegisterWebhook: registering})
        hook = await then.handle(
            cmd.RegisterWebhook(organizer.actor, rebound, ("event.published",))
        )
        await event_on_sale(bus, organizer)
        await fan_out(bus)
        sender = WebhookSender(bus.engine, bus.deps.clock, bus.deps.settings, http, inside_now)
        assert await sender.deliver_due() == 1

    assert receiver.received == []
    (logged,) = await deliveries(guarded, organizer, str(hook["id"]))
    assert logged["status"] == "pending"  # retried later: the name may point outside again
    assert logged["last_error"].startswith("refused: the host resolves to a loopback address")


async def _hanging_endpoint() -> tuple[asyncio.Server, str]:
    """Accepts, reads, never answers."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/hooks"


async def test_a_hanging_or_failing_endpoint_does_not_hold_up_the_others(
    settings: Settings, clock: ManualClock
) -> None:
    settings = settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    server, hanging = await _hanging_endpoint()
    async with (
        serving(create_app(settings, clock, FAST_PASSWORDS)) as client,
        webhook_receiver() as receiver,
        httpx.AsyncClient() as http,
    ):
        bus = app_bus(client)
        organizer = await account(bus, Role.MANAGER)
        hooks: dict[str, Any] = {
            name: await register(client, organizer, url, "event.published")
            for name, url in (
                ("good", receiver.url),
                ("hanging", hanging),
                ("broken", "http://broken.example/hooks"),
            )
        }

        async def broken_resolver(host: str, port: int) -> list[str]:
            if host == "broken.example":
                raise RuntimeError("a resolver that fails in a way nobody planned for")
            return await resolve(host, port)

        await event_on_sale(bus, organizer)
        await fan_out(bus)
        sender = WebhookSender(bus.engine, clock, settings, http, broken_resolver)
        assert await sender.deliver_due() == 3  # one round, none of them stalled it
        logged = {
            name: (await deliveries(client, organizer, hook["id"]))[0]
            for name, hook in hooks.items()
        }
    server.close()
    await server.wait_closed()
    assert len(receiver.received) == 1
    assert logged["good"]["status"] == "delivered"
    assert logged["hanging"]["last_error"] == "timeout"
    assert logged["broken"]["last_error"] == "delivery failed"
    assert {entry["status"] for name, entry in logged.items() if name != "good"} == {"pending"}
