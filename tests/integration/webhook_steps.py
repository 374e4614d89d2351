"""Steps of the webhook tests: register an endpoint over the API, fan the stored events out to
deliveries, read an endpoint's delivery log."""

from __future__ import annotations

from typing import Any

import httpx

from ticketflow.services.event_consumers import EventConsumer, consume_once, event_source_for
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.webhook_fanout import CONSUMER, handler_for

from ..builders import API, Account

HOOKS = f"{API}/webhooks"


async def register(
    client: httpx.AsyncClient, owner: Account, url: str, *event_types: str
) -> dict[str, Any]:
    response = await client.post(
        HOOKS, json={"url": url, "event_types": list(event_types)}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def fan_out(bus: MessageBus) -> None:
    """Run the webhooks consumer until it has taken every stored event."""
    source = await event_source_for(bus, CONSUMER)
    consumer = EventConsumer(bus.engine, bus.deps.clock, CONSUMER, handler_for(bus))
    while await consume_once(source, consumer):
        pass


async def deliveries(
    client: httpx.AsyncClient, owner: Account, hook_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{HOOKS}/{hook_id}/deliveries", headers=owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
