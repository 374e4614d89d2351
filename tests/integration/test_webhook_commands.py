"""Registering and deleting a webhook endpoint are commands like any other: through the bus and
the unit of work, each with its domain event in the audit trail (never the secret, nor the URL's
path or query), the Idempotency-Key spent with the change, the per-organizer limit kept under
concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.errors import LimitReached, NotFound
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.webhook_fanout import webhook_event_types

from ..builders import API, Account, account, app_bus, problem
from ..conftest import FAST_PASSWORDS, scalar, wipe
from .webhook_steps import HOOKS, deliveries, fan_out, register

AUDIT = f"{API}/admin/audit"
# A receiver's token in the path and the query, as Slack's and others' URLs carry them.
TOKENED_URL = "https://hooks.example/services/T0K3N-IN-PATH?key=T0K3N-IN-QUERY"


async def webhook_facts(client: httpx.AsyncClient, admin: Account) -> list[dict[str, Any]]:
    response = await client.get(
        AUDIT, params={"stream_type": "webhook", "limit": 50}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_registering_and_deleting_are_in_the_audit_trail_without_secrets(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    admin, organizer = await account(bus, Role.ADMIN), await account(bus, Role.MANAGER)
    hook = await register(client, organizer, TOKENED_URL, "booking.held", "booking.confirmed")
    deleted = await client.delete(f"{HOOKS}/{hook['id']}", headers=organizer.headers)
    assert deleted.status_code == 204

    registered, gone = await webhook_facts(client, admin)
    assert (registered["type"], registered["version"]) == ("webhook.registered", 1)
    assert registered["stream_id"] == gone["stream_id"] == hook["id"]
    assert registered["data"] == {
        "owner_id": str(organizer.actor.user_id),
        "origin": "https://hooks.example",
        "event_types": ["booking.confirmed", "booking.held"],
    }
    assert (gone["type"], gone["version"], gone["data"]) == ("webhook.deleted", 2, {})
    assert registered["actor_id"] == gone["actor_id"] == str(organizer.actor.user_id)
    everything = (await client.get(AUDIT, params={"limit": 50}, headers=admin.headers)).text
    for secret in (hook["secret"], "T0K3N-IN-PATH", "T0K3N-IN-QUERY"):
        assert secret not in everything


async def test_webhook_facts_are_not_offered_to_webhooks_and_the_consumer_passes_them(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    hook = await register(client, organizer, "https://hooks.example/a", "event.published")
    await register(client, organizer, "https://hooks.example/b", "event.published")
    await client.delete(f"{HOOKS}/{hook['id']}", headers=organizer.headers)
    assert not {"webhook.registered", "webhook.deleted"} & set(webhook_event_types())
    await fan_out(bus)  # the webhooks consumer takes them, and makes nothing of them
    (other,) = (await client.get(HOOKS, headers=organizer.headers)).json()["items"]
    assert await deliveries(client, organizer, other["id"]) == []


async def test_a_repeated_idempotency_key_replays_the_registration_and_registers_once(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    admin, organizer = await account(bus, Role.ADMIN), await account(bus, Role.MANAGER)
    body = {"url": "https://hooks.example/once", "event_types": ["booking.held"]}
    headers = {**organizer.headers, "Idempotency-Key": "register-once"}
    first = await client.post(HOOKS, json=body, headers=headers)
    again = await client.post(HOOKS, json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content  # the same endpoint, and the same secret
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = (await client.get(HOOKS, headers=organizer.headers)).json()["items"]
    assert [hook["id"] for hook in listed] == [first.json()["id"]]
    assert [fact["type"] for fact in await webhook_facts(client, admin)] == ["webhook.registered"]


async def test_only_the_owner_or_an_admin_deletes_and_another_organizer_learns_nothing(
    client: httpx.AsyncClient,
) -> None:
    bus = app_bus(client)
    admin = await account(bus, Role.ADMIN)
    mine, theirs = await account(bus, Role.MANAGER), await account(bus, Role.MANAGER)
    hook = await register(client, mine, "https://hooks.example/mine", "booking.held")
    problem(await client.delete(f"{HOOKS}/{hook['id']}", headers=theirs.headers), 404)
    assert [fact["type"] for fact in await webhook_facts(client, admin)] == ["webhook.registered"]
    assert (await client.delete(f"{HOOKS}/{hook['id']}", headers=admin.headers)).status_code == 204
    gone = (await webhook_facts(client, admin))[-1]
    assert (gone["type"], gone["actor_id"]) == ("webhook.deleted", str(admin.actor.user_id))


LIMIT = 3
LIVE = "SELECT count(*) FROM webhook_endpoints WHERE disabled_at IS NULL"
FACTS = "SELECT count(*) FROM domain_events WHERE type = :type"


@pytest.fixture
async def pg_bus(pg_settings: Settings, clock: ManualClock) -> AsyncIterator[MessageBus]:
    """PostgreSQL, where registrations really run at once: enough connections for all 20."""
    settings = pg_settings.model_copy(
        update={"webhook_max_endpoints_per_owner": LIMIT, "db_pool_size": 21}
    )
    bus = build_bus(settings, clock, FAST_PASSWORDS)
    await wipe(bus.engine)
    try:
        yield bus
    finally:
        await bus.engine.dispose()


def hook_of(owner: Account, n: int) -> cmd.RegisterWebhook:
    return cmd.RegisterWebhook(owner.actor, f"https://hooks.example/{n}", ("booking.held",))


async def test_concurrent_registrations_of_one_organizer_never_pass_the_limit(
    pg_bus: MessageBus,
) -> None:
    bus = pg_bus
    organizer = await account(bus, Role.MANAGER)
    await bus.handle(hook_of(organizer, 0))  # one registered: 20 race for the last places
    outcomes = await asyncio.gather(
        *(bus.handle(hook_of(organizer, n)) for n in range(1, 21)), return_exceptions=True
    )
    assert sum(isinstance(outcome, dict) for outcome in outcomes) == LIMIT - 1
    assert all(isinstance(outcome, (dict, LimitReached)) for outcome in outcomes), outcomes
    assert await scalar(bus.engine, LIVE) == LIMIT
    assert await scalar(bus.engine, FACTS, type="webhook.registered") == LIMIT


async def test_two_deletions_at_once_delete_once(pg_bus: MessageBus) -> None:
    bus = pg_bus
    organizer = await account(bus, Role.MANAGER)
    hook = await bus.handle(hook_of(organizer, 0))
    outcomes = await asyncio.gather(
        *(bus.handle(cmd.DeleteWebhook(organizer.actor, hook["id"])) for _ in range(2)),
        return_exceptions=True,
    )
    assert outcomes.count(None) == 1, outcomes
    assert any(isinstance(outcome, NotFound) for outcome in outcomes), outcomes
    assert await scalar(bus.engine, LIVE) == 0
    assert await scalar(bus.engine, FACTS, type="webhook.deleted") == 1
