"""Idempotency keys taken as a request would take them, for tests that stage a key's state."""

from __future__ import annotations

from datetime import timedelta

from ticketflow.adapters.idempotency_store import Claim, IdempotencyKeys, KeyScope, KeyUse
from ticketflow.api.idempotency import fingerprint
from ticketflow.services.messagebus import MessageBus

from ..builders import API

BOOKINGS = f"{API}/bookings"


def booking_key(scope: KeyScope, body: bytes) -> KeyUse:
    """`scope` used for a POST /bookings with `body`."""
    return KeyUse(scope, "POST", BOOKINGS, fingerprint("POST", BOOKINGS, body))


async def claim(bus: MessageBus, use: KeyUse) -> Claim:
    """Claim the key as the middleware does before it runs a request (24 h, as configured)."""
    ttl = timedelta(seconds=bus.deps.settings.idempotency_key_ttl_seconds)
    async with IdempotencyKeys.own_transaction(bus.engine) as keys:
        [claimed] = await keys.claim_many([use], bus.deps.clock.now(), ttl)
    return claimed
