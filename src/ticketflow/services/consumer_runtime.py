"""The event consumers every app process runs in the background (e-mail, webhooks, ...).

Each consumer module exposes a factory `bus -> Handler` and adds one `ConsumerSpec` to
`CONSUMERS`. With Redis, each consumer is a consumer group on the events stream (one member per
process, so the work spreads over instances); embedded, each reads the event store from its own
position. Either way the inbox (services/event_consumers.py) applies every event once per consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ticketflow.services import ticket_emails, webhook_fanout
from ticketflow.services.event_consumers import (
    EventConsumer,
    Handler,
    Interest,
    consume_once,
    event_source_for,
)
from ticketflow.services.messagebus import MessageBus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    name: str  # the consumer group / inbox name: never rename one that has run
    handler_for: Callable[[MessageBus], Handler]
    effects_outside: bool = False  # see EventConsumer: mail, not database writes
    interest_for: Callable[[MessageBus], Interest] | None = None  # see event_consumers.Interest


CONSUMERS: list[ConsumerSpec] = []
CONSUMERS.append(
    ConsumerSpec(
        ticket_emails.CONSUMER,
        ticket_emails.handler_for,
        effects_outside=True,
        interest_for=ticket_emails.interest_for,
    )
)
CONSUMERS.append(
    ConsumerSpec(
        webhook_fanout.CONSUMER,
        webhook_fanout.handler_for,
        interest_for=webhook_fanout.interest_for,
    )
)


async def run_consumer(
    bus: MessageBus,
    spec: ConsumerSpec,
    idle_seconds: float,
    lull: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Apply events to `spec`'s handler forever; sleeps only while caught up, and before each
    round waits for `lull()` if given (services/requests_in_flight.py). A failed round is logged
    and retried: what it did not acknowledge comes back."""
    source = await event_source_for(bus, spec.name)
    consumer = EventConsumer(
        bus.engine,
        bus.deps.clock,
        spec.name,
        spec.handler_for(bus),
        effects_outside=spec.effects_outside,
        interested=spec.interest_for(bus) if spec.interest_for else None,
    )
    while True:
        if lull is not None:
            await lull()
        try:
            taken = await consume_once(source, consumer)
        except Exception:
            log.exception("consumer %s failed; retrying", spec.name)
            taken = 0
        if not taken:
            await asyncio.sleep(idle_seconds)
