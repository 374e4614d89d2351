"""Organizer webhooks: registered per event type, fanned out once per event by the "webhooks"
consumer, POSTed signed by the delivery worker to a real local HTTP server, retried with growing
delays until dead after 24 hours, and visible in the delivery log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy import event

from ticketflow.adapters.clock import ManualClock
from ticketflow.adapters.db import create_engine
from ticketflow.adapters.event_store import StoredEvent
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.webhook_delivery import WebhookSender
from ticketflow.services.webhook_fanout import LiveEndpoints

from ..builders import PASSWORD, Account, account, app_bus, error_fields, event_on_sale, problem
from ..conftest import wipe
from .conftest import Stack, running_app
from .webhook_receiver import Receiver, webhook_receiver
from .webhook_steps import HOOKS, deliveries, fan_out, register


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def sender(bus: MessageBus, http: httpx.AsyncClient) -> WebhookSender:
    return WebhookSender(bus.engine, bus.deps.clock, bus.deps.settings, http)


def verified(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does, as the README documents it (computed here, not with our code)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


async def test_a_booking_reaches_the_organizers_endpoint_signed(
    client: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    hook = await register(client, organizer, receiver.url, "booking.held")
    assert hook["secret"].startswith("whsec_")
    sale = await event_on_sale(bus, organizer)
    buyer = await account(bus)
    booking = await bus.handle(
        cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 2),))
    )

    await fan_out(bus)
    await fan_out(bus)  # caught up: nothing is fanned out twice
    assert await sender(bus, http).deliver_due() == 1

    (delivery,) = receiver.received
    assert verified(hook["secret"], delivery.headers["TicketFlow-Signature"], delivery.body)
    assert not verified("whsec_another", delivery.headers["TicketFlow-Signature"], delivery.body)
    timestamp = int(delivery.headers["TicketFlow-Signature"].split(",")[0].removeprefix("t="))
    assert timestamp == int(clock.now().timestamp())
    payload = json.loads(delivery.body)
    assert payload["type"] == delivery.headers["TicketFlow-Event-Type"] == "booking.held"
    assert payload["id"] == delivery.headers["TicketFlow-Event-Id"]
    assert payload["event_id"] == str(sale.event.id)
    assert payload["subject"] == {"type": "booking", "id": str(booking.id), "version": 1}
    assert payload["data"]["lines"][0]["quantity"] == 2

    (logged,) = await deliveries(client, organizer, hook["id"])
    assert logged["id"] == payload["id"]
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert logged["next_attempt_at"] is None
    assert await sender(bus, http).deliver_due() == 0  # delivered once, never again


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_failing_endpoint_is_retried_with_growing_delays_then_dead_after_a_day(
    client: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    receiver.status = 503
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    hook = await register(client, organizer, receiver.url, "event.published")
    await event_on_sale(bus, organizer)
    await fan_out(bus)
    worker = sender(bus, http)

    delays = []
    for attempt in (1, 2, 3):
        before = clock.now()
        assert await worker.deliver_due() == 1
        (logged,) = await deliveries(client, organizer, hook["id"])
        assert (logged["status"], logged["attempts"]) == ("pending", attempt)
        assert (logged["last_status_code"], logged["last_error"]) == (503, "HTTP 503")
        delay = (_at(logged["next_attempt_at"]) - before).total_seconds()
        assert 7.5 * 2 ** (attempt - 1) <= delay <= 10 * 2 ** (attempt - 1)  # 10 s doubling
        delays.append(delay)
        assert await worker.deliver_due() == 0  # not due yet
        clock.advance(delay)
    assert delays == sorted(delays)

    clock.advance(24 * 3600)
    assert await worker.deliver_due() == 1
    session = await bus.handle(cmd.LogIn(organizer.email, PASSWORD))  # a day on: a new token
    organizer = Account(organizer.actor, organizer.email, session.access_token)
    (logged,) = await deliveries(client, organizer, hook["id"])
    assert (logged["status"], logged["attempts"], logged["next_attempt_at"]) == ("dead", 4, None)
    assert len(receiver.received) == 4
    clock.advance(3600)
    assert await worker.deliver_due() == 0  # dead stays dead


async def test_an_unreachable_endpoint_counts_as_a_failed_attempt(
    client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    async with webhook_receiver() as gone:
        url = gone.url  # the port is free again once it stops
    hook = await register(client, organizer, url, "event.published")
    await event_on_sale(bus, organizer)
    await fan_out(bus)
    assert await sender(bus, http).deliver_due() == 1
    (logged,) = await deliveries(client, organizer, hook["id"])
    assert (logged["status"], logged["attempts"], logged["last_status_code"]) == (
        "pending",
        1,
        None,
    )
    assert logged["last_error"] == "connection refused"  # coarse: no more of our network


async def test_two_workers_deliver_each_delivery_once(
    client: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    await register(client, organizer, receiver.url, "booking.held")
    sale = await event_on_sale(bus, organizer)
    buyer = await account(bus)
    for _ in range(6):
        await bus.handle(
            cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 1),))
        )
    await fan_out(bus)
    done = await asyncio.gather(sender(bus, http).deliver_due(), sender(bus, http).deliver_due())
    assert sum(done) == 6
    ids = [received.headers["TicketFlow-Event-Id"] for received in receiver.received]
    assert len(ids) == len(set(ids)) == 6


async def test_organizers_see_and_receive_only_their_own(
    client: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    bus = app_bus(client)
    mine, theirs = await account(bus, Role.MANAGER), await account(bus, Role.MANAGER)
    admin, buyer = await account(bus, Role.ADMIN), await account(bus)
    hook = await register(client, mine, receiver.url, "booking.held", "event.published")
    other_sale = await event_on_sale(bus, theirs)
    await bus.handle(
        cmd.HoldTickets(buyer.actor, other_sale.event.id, ((other_sale.ticket_types[0].id, 1),))
    )
    await fan_out(bus)
    assert await sender(bus, http).deliver_due() == 0  # another organizer's sale: not mine

    for path in (f"{HOOKS}/{hook['id']}", f"{HOOKS}/{hook['id']}/deliveries"):
        problem(await client.get(path, headers=theirs.headers), 404)
        problem(await client.get(path, headers=buyer.headers), 403)
        problem(await client.get(path), 401)
        assert (await client.get(path, headers=admin.headers)).status_code == 200
    problem(await client.delete(f"{HOOKS}/{hook['id']}", headers=theirs.headers), 404)
    assert (await client.get(HOOKS, headers=theirs.headers)).json()["items"] == []
    (listed,) = (await client.get(HOOKS, headers=mine.headers)).json()["items"]
    assert listed["id"] == hook["id"] and "secret" not in listed
    assert hook["id"] in [
        h["id"] for h in (await client.get(HOOKS, headers=admin.headers)).json()["items"]
    ]
    problem(
        await client.post(
            HOOKS,
            json={"url": receiver.url, "event_types": ["booking.held"]},
            headers=buyer.headers,
        ),
        403,
    )


async def test_a_deleted_endpoint_is_gone_and_its_pending_deliveries_given_up(
    client: httpx.AsyncClient, receiver: Receiver, http: httpx.AsyncClient
) -> None:
    bus = app_bus(client)
    organizer = await account(bus, Role.MANAGER)
    hook = await register(client, organizer, receiver.url, "event.published")
    await event_on_sale(bus, organizer)
    await fan_out(bus)
    (pending,) = await deliveries(client, organizer, hook["id"])
    assert pending["status"] == "pending"

    response = await client.delete(f"{HOOKS}/{hook['id']}", headers=organizer.headers)
    assert response.status_code == 204
    problem(await client.get(f"{HOOKS}/{hook['id']}", headers=organizer.headers), 404)
    problem(await client.delete(f"{HOOKS}/{hook['id']}", headers=organizer.headers), 404)
    assert await sender(bus, http).deliver_due() == 0
    assert receiver.received == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hooks", "event_types": ["booking.held"]}, "url"),
        ({"url": "https://user:pw@example.com/hooks", "event_types": ["booking.held"]}, "url"),
        ({"url": "https://example.com:99999/hooks", "event_types": ["booking.held"]}, "url"),
        ({"url": "https://[::1/hooks", "event_types": ["booking.held"]}, "url"),
        ({"url": "not a url at all", "event_types": ["booking.held"]}, "url"),
        ({"url": "https://example.com/hooks", "event_types": []}, "event_types"),
        ({"url": "https://example.com/hooks", "event_types": ["user.registered"]}, "event_types.0"),
        ({"url": "https://example.com/hooks", "event_types": ["booking.held"], "x": 1}, "x"),
    ],
)
async def test_registration_refuses_what_cannot_be_delivered_to(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    organizer = await account(app_bus(client), Role.MANAGER)
    response = await client.post(HOOKS, json=body, headers=organizer.headers)
    assert field in error_fields(response)


async def test_the_secret_is_shown_only_when_registered(client: httpx.AsyncClient) -> None:
    organizer = await account(app_bus(client), Role.MANAGER)
    hook = await register(client, organizer, "https://example.com/hooks", "booking.confirmed")
    shown = (await client.get(f"{HOOKS}/{hook['id']}", headers=organizer.headers)).json()
    assert "secret" not in shown
    assert shown["event_types"] == ["booking.confirmed"]
    assert UUID(shown["owner_id"]) == organizer.actor.user_id


async def test_the_app_fans_out_and_delivers_in_the_background(
    stack: Stack, clock: ManualClock
) -> None:
    """The lifespan's jobs: the consumer (a Redis consumer group, or embedded the event store)
    and the delivery worker."""
    settings = stack.settings(
        run_relay=True,
        run_consumers=True,
        run_webhook_deliveries=True,
        consumer_idle_seconds=0.05,
        webhook_interval_seconds=0.05,
    )
    engine = create_engine(settings)  # emptied before the jobs start: TRUNCATE waits for them
    try:
        await wipe(engine)
    finally:
        await engine.dispose()
    background = running_app(settings, clock, wipe_first=False)
    async with webhook_receiver() as receiver, background as running:
        organizer = await account(running.bus, Role.MANAGER)
        hook = await register(running.client(), organizer, receiver.url, "event.published")
        sale = await event_on_sale(running.bus, organizer)
        await asyncio.wait_for(receiver.arrived.wait(), 10)
        (delivery,) = receiver.received
        assert verified(hook["secret"], delivery.headers["TicketFlow-Signature"], delivery.body)
        assert json.loads(delivery.body)["event_id"] == str(sale.event.id)


async def test_fresh_events_ask_for_live_endpoints_once_a_second_not_once_each(
    bus: MessageBus, clock: ManualClock
) -> None:
    """A flash sale's fresh holds: one answer "none live" serves every event that had happened
    when it was given, for a second; newer events, or a second later, ask again and see an
    endpoint registered meanwhile."""
    live = LiveEndpoints(bus.engine, clock)
    asked: list[str] = []

    def count(*args: Any) -> None:
        if "EXISTS" in args[2]:  # the statement: "is any endpoint live?"
            asked.append(args[2])

    event.listen(bus.engine.sync_engine, "before_cursor_execute", count)
    try:

        def held(seconds_ago: float) -> StoredEvent:
            at = clock.now() - timedelta(seconds=seconds_ago)
            return StoredEvent(1, "booking", uuid4(), 1, "booking.held", {}, at)

        assert [await live.could_want(held(0.1)) for _ in range(100)] == [False] * 100
        assert len(asked) == 1
        organizer = await account(bus, Role.MANAGER)
        await bus.handle(
            cmd.RegisterWebhook(organizer.actor, "http://hooks.example/x", ("booking.held",))
        )
        clock.advance(0.5)
        assert not await live.could_want(held(0.6))  # had happened when "none" was said
        assert await live.could_want(held(0.1))  # newer: asked, and the endpoint is seen
        clock.advance(1)
        assert await live.could_want(held(1.6))  # the answer is a second old: asked again
        assert len(asked) == 3
    finally:
        event.remove(bus.engine.sync_engine, "before_cursor_execute", count)
