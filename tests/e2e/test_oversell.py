"""Overselling is impossible: 500 buyers race for 100 tickets across 4 server processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import httpx

from ticketflow.services.messagebus import MessageBus

from ..builders import book, event_on_sale
from ..conftest import scalar
from ..invariants import assert_invariants
from .conftest import buyers
from .servers import ServerProcess

TICKETS = 100
BUYERS = 500


async def test_overselling_is_impossible(
    app_servers: list[ServerProcess], e2e_bus: MessageBus
) -> None:
    sale = await event_on_sale(e2e_bus, totals=(TICKETS,))
    accounts = await buyers(e2e_bus, BUYERS)
    one_ticket = (sale.ticket_types[0].id, 1)
    # One client (connection pool) per server: httpx's pool slows down quadratically with the
    # requests in flight on one client, and the load, not the test client, is what we measure.
    limits = httpx.Limits(max_connections=BUYERS, max_keepalive_connections=BUYERS)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30.0)
            )
            for server in app_servers
        ]
        answers = await asyncio.gather(
            *(
                book(clients[index % len(clients)], buyer, sale.event.id, one_ticket)
                for index, buyer in enumerate(accounts)
            ),
            return_exceptions=True,
        )

    assert all(server.process.returncode is None for server in app_servers), "a server died"
    failed = [answer for answer in answers if not isinstance(answer, httpx.Response)]
    assert not failed, f"{len(failed)} requests failed without an answer, e.g. {failed[0]!r}"
    responses = [answer for answer in answers if isinstance(answer, httpx.Response)]
    assert Counter(r.status_code for r in responses) == {201: TICKETS, 409: BUYERS - TICKETS}
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["status"] == 409
    held = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(held) == TICKETS

    engine = e2e_bus.engine
    assert await scalar(engine, "SELECT count(*) FROM bookings") == TICKETS
    assert await scalar(engine, "SELECT count(*) FROM bookings WHERE status = 'pending'") == TICKETS
    assert await scalar(engine, "SELECT sum(quantity) FROM booking_lines") == TICKETS
    assert await scalar(engine, "SELECT sum(available) FROM ticket_types") == 0
    async with engine.connect() as connection:
        stored = await connection.exec_driver_sql("SELECT id FROM bookings")
        assert {str(row.id) for row in stored} == held
    await assert_invariants(engine)
