"""HTTP caching of the public catalog reads (GET /events, GET /events/{id}): a strong ETag of the
exact bytes, 304 for a current If-None-Match, `Cache-Control: public` only on an answer that is the
same for every caller."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from ticketflow.api.app import create_app
from ticketflow.api.http_caching import PRIVATE, PUBLIC
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

from ..builders import API, account, event_on_sale


def strong_etag_of(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


@pytest.mark.parametrize("read", ["event", "list"])
async def test_a_public_read_has_a_strong_etag_of_its_bytes_and_a_current_one_gets_304(
    client: httpx.AsyncClient, bus: MessageBus, read: str
) -> None:
    sale = await event_on_sale(bus)
    path = f"{API}/events/{sale.event.id}" if read == "event" else f"{API}/events"
    first = await client.get(path)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == PUBLIC == "public, max-age=1, stale-while-revalidate=5"
    etag = first.headers["ETag"]
    assert etag == strong_etag_of(first.content)

    for sent in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        again = await client.get(path, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["ETag"] == etag
        assert again.headers["Cache-Control"] == PUBLIC
        assert again.headers["X-Cache"] in ("hit", "miss")


@pytest.mark.parametrize("read", ["event", "list"])
async def test_a_change_of_availability_changes_the_etag_and_a_stale_one_gets_the_new_body(
    client: httpx.AsyncClient, bus: MessageBus, read: str
) -> None:
    sale = await event_on_sale(bus, totals=(10,))
    path = f"{API}/events/{sale.event.id}" if read == "event" else f"{API}/events"
    before = await client.get(path)
    buyer = await account(bus)
    await bus.handle(cmd.HoldTickets(buyer.actor, sale.event.id, ((sale.ticket_types[0].id, 4),)))
    # These tests read availability live (TTL 0); test_catalog_cache.py moves the clock past it.
    after = await client.get(path, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["ETag"] == strong_etag_of(after.content)
    event = after.json() if read == "event" else after.json()["items"][0]
    assert event["ticket_types"][0]["available"] == 6


async def test_a_published_event_is_the_same_public_answer_for_every_caller(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus)
    path = f"{API}/events/{sale.event.id}"
    anonymous = await client.get(path)
    organizer = await client.get(path, headers=sale.organizer.headers)
    assert organizer.content == anonymous.content
    assert organizer.headers["ETag"] == anonymous.headers["ETag"]
    assert organizer.headers["Cache-Control"] == PUBLIC


async def test_an_organizers_view_of_their_draft_is_private_and_never_304(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, publish=False)
    path = f"{API}/events/{sale.event.id}"
    admin = await account(bus, Role.ADMIN)
    for caller in (sale.organizer, admin):
        draft = await client.get(path, headers=caller.headers)
        assert draft.status_code == 200
        assert draft.json()["status"] == "draft"
        assert draft.headers["Cache-Control"] == PRIVATE == "private, no-store"
        assert "ETag" not in draft.headers
        again = await client.get(
            path, headers={**caller.headers, "If-None-Match": strong_etag_of(draft.content)}
        )
        assert again.status_code == 200 and again.content == draft.content
    anonymous = await client.get(path)
    assert anonymous.status_code == 404
    assert "public" not in anonymous.headers.get("Cache-Control", "")


async def test_an_organizers_own_list_is_private(
    client: httpx.AsyncClient, bus: MessageBus
) -> None:
    sale = await event_on_sale(bus, publish=False)
    mine = await client.get(
        f"{API}/events", params={"mine": "true"}, headers=sale.organizer.headers
    )
    assert [event["status"] for event in mine.json()["items"]] == ["draft"]
    assert mine.headers["Cache-Control"] == PRIVATE
    assert "ETag" not in mine.headers


def test_the_openapi_document_states_the_caching_and_the_freshness_bound() -> None:
    operations = create_app(Settings()).openapi()["paths"]
    for path in (f"{API}/events", f"{API}/events/{{event_id}}"):
        get = operations[path]["get"]
        assert "304" in get["responses"]
        assert {"ETag", "Cache-Control", "X-Cache"} <= set(get["responses"]["200"]["headers"])
        assert "TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS" in get["description"]
        assert "If-None-Match" in get["description"]
        assert "private, no-store" in get["description"]
