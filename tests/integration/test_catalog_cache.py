"""Cached catalog reads: hits are marked and are the stored bytes, writes invalidate at once,
availability stays within its TTL on every instance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from cashews import Cache

from ticketflow.adapters.clock import ManualClock
from ticketflow.api.app import create_app
from ticketflow.api.schemas import EventOut
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
from ticketflow.services.catalog_views import CatalogViews
from ticketflow.services.messagebus import MessageBus

from ..builders import API, account, app_bus, event_on_sale
from ..conftest import FAST_PASSWORDS, serving
from .conftest import Stack, running_app


@pytest.fixture
async def cached(settings: Settings, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its caches on, availability kept a whole minute to make lag observable."""
    settings = settings.model_copy(update={"availability_cache_ttl_seconds": 60})
    app = create_app(settings, clock, FAST_PASSWORDS)
    async with serving(app) as client:
        yield client


async def test_second_read_of_an_event_is_a_cache_hit(cached: httpx.AsyncClient) -> None:
    sale = await event_on_sale(app_bus(cached))
    first = await cached.get(f"{API}/events/{sale.event.id}")
    again = await cached.get(f"{API}/events/{sale.event.id}")
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit")
    assert first.json() == again.json()
    pages = [await cached.get(f"{API}/events") for _ in range(2)]
    assert [page.headers["X-Cache"] for page in pages] == ["miss", "hit"]
    assert app_bus(cached).deps.views.hits == 2


async def test_an_update_is_visible_on_the_next_read(cached: httpx.AsyncClient) -> None:
    bus = app_bus(cached)
    sale = await event_on_sale(bus)
    await cached.get(f"{API}/events/{sale.event.id}")
    await cached.get(f"{API}/events")
    await bus.handle(cmd.UpdateEvent(sale.organizer.actor, sale.event.id, {"title": "Renamed"}))
    assert (await cached.get(f"{API}/events/{sale.event.id}")).json()["title"] == "Renamed"
    assert (await cached.get(f"{API}/events")).json()["items"][0]["title"] == "Renamed"


async def test_a_cancelled_event_leaves_the_public_list_at_once(cached: httpx.AsyncClient) -> None:
    bus = app_bus(cached)
    sale = await event_on_sale(bus)
    assert len((await cached.get(f"{API}/events")).json()["items"]) == 1
    await bus.handle(cmd.CancelEvent(sale.organizer.actor, sale.event.id))
    assert (await cached.get(f"{API}/events")).json()["items"] == []


async def test_availability_lags_at_most_its_ttl_and_a_total_change_refreshes_it(
    cached: httpx.AsyncClient,
) -> None:
    bus = app_bus(cached)
    sale = await event_on_sale(bus, totals=(10,))
    tier = sale.ticket_types[0].id
    await cached.get(f"{API}/events/{sale.event.id}")
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 3),)))
    lagging = (await cached.get(f"{API}/events/{sale.event.id}")).json()
    assert lagging["ticket_types"][0]["available"] == 10  # by design, within its TTL
    await bus.handle(cmd.UpdateTicketType(sale.organizer.actor, tier, {"total": 12}))
    fresh = (await cached.get(f"{API}/events/{sale.event.id}")).json()
    assert fresh["ticket_types"][0]["available"] == 9


async def test_drafts_stay_private_even_when_cached(cached: httpx.AsyncClient) -> None:
    bus = app_bus(cached)
    sale = await event_on_sale(bus, publish=False)
    owner = await cached.get(f"{API}/events/{sale.event.id}", headers=sale.organizer.headers)
    assert owner.status_code == 200
    assert (await cached.get(f"{API}/events/{sale.event.id}")).status_code == 404


async def test_a_hit_is_the_stored_body_byte_for_byte_what_a_miss_sends(
    cached: httpx.AsyncClient, clock: ManualClock
) -> None:
    bus = app_bus(cached)
    sale = await event_on_sale(bus, totals=(10, 5))
    path = f"{API}/events/{sale.event.id}"
    miss, hit = await cached.get(path), await cached.get(path)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert hit.content == miss.content == await _rendered(bus, sale.event.id)
    assert hit.headers["ETag"] == miss.headers["ETag"]

    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 3),)))
    clock.advance(60)  # the availability TTL of `cached`: the copy may no longer answer
    renewed, hit = await cached.get(path), await cached.get(path)
    assert (renewed.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert hit.content == renewed.content == await _rendered(bus, sale.event.id)
    assert [tt["available"] for tt in hit.json()["ticket_types"]] == [7, 5]
    assert hit.headers["ETag"] == renewed.headers["ETag"] != miss.headers["ETag"]


async def test_availability_is_renewed_before_it_expires(
    bus: MessageBus, clock: ManualClock
) -> None:
    """Past a share of its TTL a kept availability still answers (a hit) and one read renews it
    meanwhile: under steady browsing it never lapses into a herd of misses."""
    cache = Cache()
    cache.setup("mem://")
    views = CatalogViews(bus.engine, cache, clock, detail_ttl=60, availability_ttl=60)
    sale = await event_on_sale(bus, totals=(10,))
    tier = sale.ticket_types[0].id
    _, live, hit = await views.event(sale.event.id, None)
    assert not hit and live[tier] == 10
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 3),)))
    clock.advance(45)
    _, live, hit = await views.event(sale.event.id, None)
    assert hit and live[tier] == 10  # the kept copy answers, a renewal is in flight
    await views.settled()
    _, live, hit = await views.event(sale.event.id, None)
    assert hit and live[tier] == 7


async def test_a_hold_shows_on_every_instance_within_the_availability_ttl(
    stack: Stack, clock: ManualClock
) -> None:
    """The freshness bound (issue 15, target 4): a hold made through one instance shows in what
    another answers at most TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS later. The clock moves in
    steps while the reader polls; no sleeping."""
    settings = stack.settings(availability_cache_ttl_seconds=1.0)
    bound = settings.availability_cache_ttl_seconds
    async with (
        running_app(settings, clock) as seller,
        running_app(settings, clock, wipe_first=False) as reader,
    ):
        sale = await event_on_sale(seller.bus, totals=(500,), max_per_booking=120)
        path = f"{API}/events/{sale.event.id}"
        browsers = (seller.client(), reader.client())
        for browser in browsers:  # both instances now keep the event and its availability
            assert _available(await browser.get(path)) == 500
        buyer = await account(seller.bus)
        tier = sale.ticket_types[0].id
        await seller.bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((tier, 120),)))
        held_at = clock.now()
        assert _available(await browsers[1].get(path)) == 500  # lags, by design

        async with asyncio.timeout(10):  # a deadline for the test, not what it measures
            while _available(await browsers[1].get(path)) != 380:
                assert (clock.now() - held_at).total_seconds() < bound, "staler than the bound"
                clock.advance(bound / 10)
        assert (clock.now() - held_at).total_seconds() <= bound


async def _rendered(bus: MessageBus, event_id: uuid.UUID) -> bytes:
    """The event as the response model renders it from the database now."""
    async with bus.engine.connect() as connection:
        row = await queries.event_detail(connection, event_id, None)
    return EventOut.model_validate(row).model_dump_json().encode()


def _available(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    (ticket_type,) = response.json()["ticket_types"]
    left: int = ticket_type["available"]
    return left
