"""Rate limits: brute force on login per IP and per account, bookings per user, a per-IP default;
429 problem+json with Retry-After; counted in Redis or in memory; off when configured so."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import httpx
import pytest

from ticketflow.adapters.clock import ManualClock
from ticketflow.domain.model import Role

from ..builders import API, PASSWORD, account, book, booking_body, event_on_sale, problem
from .conftest import DEAD_REDIS_URL, Stack, running_app

ATTACKER, BUYER = "203.0.113.7", "198.51.100.20"


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


def refused(response: httpx.Response) -> int:
    """The Retry-After of a 429 problem answer."""
    problem(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def test_100_wrong_passwords_from_one_ip_get_429_while_another_ip_logs_in(
    stack: Stack, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(stack.settings(rate_limits="on"), clock) as app:
        buyer = await account(app.bus)
        attacker = app.client(ATTACKER)
        # Guesses spread over many accounts, so only the per-IP limit can stop them.
        with caplog.at_level(logging.WARNING, logger="ticketflow.security"):
            answers = [
                await log_in(attacker, f"victim-{n}@example.com", "guess-123") for n in range(100)
            ]
        statuses = [answer.status_code for answer in answers]
        assert statuses == [401] * 20 + [429] * 80  # the default: 20 per minute per IP
        assert 1 <= refused(answers[-1]) <= 60
        refused(await log_in(attacker, buyer.email, PASSWORD))  # even the right one, now
        assert (await log_in(app.client(BUYER), buyer.email, PASSWORD)).status_code == 200
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ticketflow.security"]
    assert len(events) == 81  # the 80 refused guesses, and the right password after them
    assert {(event["event"], event["ip"]) for event in events} == {("login_rate_limited", ATTACKER)}


async def test_registrations_share_the_per_ip_budget_of_password_checks(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(rate_limits="on", rate_limit_login_per_ip="3/minute")
    async with running_app(settings, clock) as app:
        client = app.client(ATTACKER)
        statuses = [
            (
                await client.post(
                    f"{API}/auth/register",
                    json={"email": f"bot-{n}@example.com", "password": PASSWORD},
                )
            ).status_code
            for n in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
        refused(await log_in(client, "bot-0@example.com", PASSWORD))


async def test_failed_logins_for_one_account_from_many_ips_lock_only_that_account(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(rate_limits="on"), clock) as app:
        victim, bystander = await account(app.bus), await account(app.bus)
        answers = [
            await log_in(app.client(f"203.0.113.{n}"), victim.email, "guess-123")
            for n in range(1, 31)
        ]
        assert [a.status_code for a in answers] == [401] * 10 + [429] * 20  # 10 per 15 minutes
        refused(await log_in(app.client(BUYER), victim.email, PASSWORD))
        assert (await log_in(app.client(BUYER), bystander.email, PASSWORD)).status_code == 200


async def test_guesses_sent_together_are_counted_before_their_passwords_are_checked(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(rate_limits="on"), clock) as app:
        victim = await account(app.bus)
        answers = await asyncio.gather(
            *(log_in(app.client(f"203.0.113.{n}"), victim.email, "guess-123") for n in range(1, 31))
        )
        statuses = [answer.status_code for answer in answers]
        assert statuses.count(429) == 20  # not 30 guesses past a limit of 10
        # The 10 counted were checked, or on a host too busy to check them all within the
        # hashing's patience refused as overload after they were counted (the CI run of
        # c674870 on a loaded host: 6 x 503).
        assert statuses.count(401) + statuses.count(503) == 10 and 401 in statuses


async def test_successful_logins_do_not_use_up_the_accounts_budget(
    stack: Stack, clock: ManualClock
) -> None:
    async with running_app(stack.settings(rate_limits="on"), clock) as app:
        buyer = await account(app.bus)
        for n in range(1, 16):
            response = await log_in(app.client(f"192.0.2.{n}"), buyer.email, PASSWORD)
            assert response.status_code == 200, response.text


async def test_each_buyer_has_a_booking_budget_of_their_own(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(rate_limits="on", rate_limit_bookings_per_user="3/minute")
    async with running_app(settings, clock) as app:
        sale = await event_on_sale(app.bus)
        first, second = await account(app.bus), await account(app.bus)
        one_ticket = (sale.ticket_types[0].id, 1)
        client = app.client()
        statuses = [
            (await book(client, first, sale.event.id, one_ticket)).status_code for _ in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
        response = await book(client, second, sale.event.id, one_ticket)
        assert response.status_code == 201, response.text


async def test_every_other_request_has_a_per_ip_default(stack: Stack, clock: ManualClock) -> None:
    settings = stack.settings(rate_limits="on", rate_limit_default_per_ip="5/minute")
    async with running_app(settings, clock) as app:
        noisy, quiet = app.client(ATTACKER), app.client(BUYER)
        statuses = [(await noisy.get(f"{API}/events")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        answer = await noisy.get(f"{API}/events/{uuid.uuid4()}")
        assert "Rate limit" in problem(answer, 429)["detail"]
        assert answer.headers["x-content-type-options"] == "nosniff"  # still a hardened answer
        assert (await quiet.get(f"{API}/events")).status_code == 200
        assert (await noisy.get("/health")).status_code == 200  # probes are never limited


async def test_bookings_without_a_token_count_against_their_ip(
    stack: Stack, clock: ManualClock
) -> None:
    settings = stack.settings(rate_limits="on", rate_limit_default_per_ip="3/minute")
    async with running_app(settings, clock) as app:
        sale = await event_on_sale(app.bus)
        buyer = await account(app.bus)
        body = booking_body(sale.event.id, (sale.ticket_types[0].id, 1))
        flood = app.client(ATTACKER)
        headers = ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"})
        answers = [
            await flood.post(f"{API}/bookings", json=body, headers=headers[n % 3]) for n in range(5)
        ]
        statuses = [answer.status_code for answer in answers]
        # The per-IP limit is a sliding window counter (limits' approximation): right after a
        # minute boundary it weighs the last minute's three a little under three and lets one
        # more through; the flood is cut off all the same (failed once so in CI).
        assert statuses[:3] == [401] * 3 and statuses[4] == 429, statuses
        assert statuses[3] in (401, 429), statuses
        held = await book(app.client(BUYER), buyer, sale.event.id, (sale.ticket_types[0].id, 1))
        assert held.status_code == 201, held.text


async def test_x_forwarded_for_counts_only_when_a_trusted_proxy_sends_it(
    redis_stack: Stack, clock: ManualClock
) -> None:
    settings = redis_stack.settings(
        rate_limits="on", rate_limit_default_per_ip="3/minute", trusted_proxies="10.0.0.0/8"
    )
    async with running_app(settings, clock) as app:
        proxy, stranger = app.client("10.1.2.3"), app.client(ATTACKER)

        async def get(client: httpx.AsyncClient, forwarded_for: str) -> int:
            headers = {"X-Forwarded-For": forwarded_for}
            return (await client.get(f"{API}/events", headers=headers)).status_code

        # Behind the proxy, each client has its own budget, whatever it claims further left.
        assert [await get(proxy, f"1.1.1.1, {BUYER}") for _ in range(4)] == [200] * 3 + [429]
        assert await get(proxy, "192.0.2.44, 10.9.9.9") == 200  # another proxy hop skipped
        # From anyone else the header means nothing: the peer is counted.
        assert [await get(stranger, f"192.0.2.{n}") for n in range(4)] == [200] * 3 + [429]


async def test_rate_limits_off_lets_everything_through(stack: Stack, clock: ManualClock) -> None:
    async with running_app(stack.settings(rate_limits="off"), clock) as app:
        attacker = app.client(ATTACKER)
        statuses = {
            (await log_in(attacker, "victim@example.com", "guess-123")).status_code
            for _ in range(30)
        }
        assert statuses == {401}


async def test_with_redis_down_login_fails_closed_and_the_rest_fails_open(
    postgresql_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Stack(postgresql_url, DEAD_REDIS_URL).settings(rate_limits="on")
    async with running_app(settings, clock) as app:
        manager = await account(app.bus, Role.MANAGER)
        client = app.client()
        with caplog.at_level(logging.WARNING, logger="ticketflow.api.rate_limits"):
            response = await log_in(client, manager.email, PASSWORD)
            assert problem(response, 503)["type"].endswith("service-unavailable")
            assert response.headers["retry-after"] == "5"
            assert (await client.get(f"{API}/events")).status_code == 200
            mine = await client.get(f"{API}/events?mine=true", headers=manager.headers)
            assert mine.status_code == 200  # signed-in users carry on
        assert any("fail open" in record.getMessage() for record in caplog.records)
