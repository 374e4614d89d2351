"""Cached catalog reads: hits are marked, writes invalidate at once, availability stays live."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from cashews import Cache

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services.catalog_views import CatalogViews
from ticketflow.services.messagebus import MessageBus

from ..builders import account, event_on_sale
from ..conftest import FAST_PASSWORDS, serving


@pytest.fixture
async def cached(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its caches on, availability kept a whole minute to make lag observable."""
    settings = settings.model_copy(update={"availability_cache_ttl_seconds": 60})
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with serving(app) as client:
        yield client


def _bus(client: httpx.AsyncClient) -> MessageBus:
    bus: MessageBus = client.app_bus  # type: ignore[attr-defined]
    return bus


async def test_second_read_of_an_event_is_a_cache_hit(cached: httpx.AsyncClient) -> None:
    sale = await event_on_sale(_bus(cached))
    first = await cached.get(f"/api/v1/events/{sale.event.id}")
    again = await cached.get(f"/api/v1/events/{sale.event.id}")
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit")
    assert first.json() == again.json()
    pages = [await cached.get("/api/v1/events") for _ in range(2)]
    assert [page.headers["X-Cache"] for page in pages] == ["miss", "hit"]
    assert _bus(cached).deps.views.hits == 2


async def test_an_update_is_visible_on_the_next_read(cached: httpx.AsyncClient) -> None:
    bus = _bus(cached)
    sale = await event_on_sale(bus)
    await cached.get(f"/api/v1/events/{sale.event.id}")
    await cached.get("/api/v1/events")
    await bus.handle(cmd.UpdateEvent(sale.organizer.actor, sale.event.id, {"title": "Renamed"}))
    assert (await cached.get(f"/api/v1/events/{sale.event.id}")).json()["title"] == "Renamed"
    assert (await cached.get("/api/v1/events")).json()["items"][0]["title"] == "Renamed"


async def test_a_cancelled_event_leaves_the_public_list_at_once(cached: httpx.AsyncClient) -> None:
    bus = _bus(cached)
    sale = await event_on_sale(bus)
    assert len((await cached.get("/api/v1/events")).json()["items"]) == 1
    await bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    assert (await cached.get("/api/v1/events")).json()["items"] == []


async def test_availability_lags_at_most_its_ttl_and_a_total_change_refreshes_it(
    cached: httpx.AsyncClient,
) -> None:
    bus = _bus(cached)
    sale = await event_on_sale(bus, totals=(10,))
    tier = sale.ticket_types[0].id
    await cached.get(f"/api/v1/events/{sale.event.id}")
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 3),)))
    lagging = (await cached.get(f"/api/v1/events/{sale.event.id}")).json()
    assert lagging["ticket_types"][0]["available"] == 10  # by design, within its TTL
    await bus.handle(cmd.UpdateTicketType(sale.organizer.actor, tier, {"total": 12}))
    fresh = (await cached.get(f"/api/v1/events/{sale.event.id}")).json()
    assert fresh["ticket_types"][0]["available"] == 9


async def test_drafts_stay_private_even_when_cached(cached: httpx.AsyncClient) -> None:
    bus = _bus(cached)
    sale = await event_on_sale(bus, publish=False)
    owner = await cached.get(f"/api/v1/events/{sale.event.id}", headers=sale.organizer.headers)
    assert owner.status_code == 200
    assert (await cached.get(f"/api/v1/events/{sale.event.id}")).status_code == 404


async def test_availability_is_renewed_before_it_expires(bus: MessageBus) -> None:
    """Past half its TTL a kept availability still answers (a hit) and one read renews it
    meanwhile: under steady browsing it never lapses into a herd of misses."""
    cache = Cache()
    cache.setup("mem://")
    views = CatalogViews(bus.engine, cache, detail_ttl=60, availability_ttl=60)
    sale = await event_on_sale(bus, totals=(10,))
    _, hit = await views.event(sale.event.id, None)
    assert not hit
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 3),)))
    key = f"catalog:availability:{sale.event.id}"
    live, _ = await cache.get(key)
    await cache.set(key, (live, time.time() - 45), expire=60)  # as if read 45 s ago
    row, hit = await views.event(sale.event.id, None)
    assert hit and row["ticket_types"][0]["available"] == 10  # the kept copy answers

    async def not_started() -> dict[uuid.UUID, int]:
        raise AssertionError("no renewal was in flight")

    await asyncio.wait_for(views._reading.run(sale.event.id, not_started), 10)
    row, hit = await views.event(sale.event.id, None)
    assert hit and row["ticket_types"][0]["available"] == 7
