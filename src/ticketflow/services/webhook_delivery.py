"""The webhook delivery worker: POSTs due deliveries, signed, and records how each went.

Safe with any number of app processes: a round claims due rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; on SQLite the write transaction is the only writer) and leases them by moving their
`next_attempt_at` past the HTTP timeout, then commits before any request goes out, so no row lock
or SQLite write lock is held while an endpoint takes its time. A process killed mid-round leaves
the lease to expire and the delivery is tried again: at least once, identified by its id.
2xx: delivered. Anything else (an error status, a timeout, a refused connection): retried after
a doubling delay with jitter, until `give_up` after the delivery was created; then dead.

Each POST goes to the address its URL's host was just checked to have (adapters/
outbound_targets.py: never our own network, and no second lookup to rebind), within one overall
deadline, and whatever goes wrong with it is that delivery's failure alone: one bad endpoint
never stalls a round. What is recorded of a failure is coarse ("timeout", "connection refused",
"HTTP 503"): an organizer learns that their endpoint failed, not how our network looks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.db import WRITE
from ticketflow.adapters.outbound_targets import Resolver, TargetRefused, checked, resolve
from ticketflow.adapters.tables import webhook_deliveries as deliveries
from ticketflow.adapters.tables import webhook_endpoints as endpoints
from ticketflow.adapters.webhook_signing import SIGNATURE_HEADER, signature_header
from ticketflow.config import Settings
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.sweeper import run_periodically

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Due:
    id: UUID
    url: str
    secret: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class Outcome:
    due: Due
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from `base`, capped,
    with jitter (75-100%) so endpoints that failed together are not retried together."""
    exact: float = min(cap, base * 2.0 ** min(attempts - 1, 30))
    return exact * random.uniform(0.75, 1.0)


class WebhookSender:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        settings: Settings,
        http: httpx.AsyncClient,
        resolver: Resolver = resolve,
    ) -> None:
        self._engine, self._clock, self._settings, self._http = engine, clock, settings, http
        self._resolver = resolver
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)

    async def deliver_due(self) -> int:
        """Rounds until nothing is due: the number of attempts made."""
        attempted = 0
        while claimed := await self._claim():
            outcomes = await asyncio.gather(*(self._post(due) for due in claimed))
            await self._record(outcomes)
            attempted += len(claimed)
            if len(claimed) < self._settings.webhook_batch_size:
                break
        return attempted

    async def _claim(self) -> list[Due]:
        now = self._clock.now()
        lease = timedelta(seconds=self._settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        query = (
            select(
                deliveries.c.id,
                endpoints.c.url,
                endpoints.c.secret,
                deliveries.c.event_type,
                deliveries.c.payload,
                deliveries.c.created_at,
                deliveries.c.attempts,
            )
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
            .order_by(deliveries.c.next_attempt_at)
            .limit(self._settings.webhook_batch_size)
            .with_for_update(of=deliveries, skip_locked=True)
        )
        async with self._engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                claimed = [Due(**row) for row in (await connection.execute(query)).mappings()]
                if claimed:
                    await connection.execute(
                        update(deliveries)
                        .where(deliveries.c.id.in_([due.id for due in claimed]))
                        .values(next_attempt_at=now + lease)
                    )
        return claimed

    async def _post(self, due: Due) -> Outcome:
        body = json.dumps(due.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "TicketFlow-Webhooks/1",
            SIGNATURE_HEADER: signature_header(due.secret, timestamp, body),
            "TicketFlow-Event-Id": str(due.id),
            "TicketFlow-Event-Type": due.event_type,
        }
        async with self._slots:
            try:
                async with asyncio.timeout(self._settings.webhook_timeout_seconds):
                    status = await self._send(due.url, body, headers)
            except TargetRefused as refused:
                return Outcome(due, None, f"refused: {refused}")
            except TimeoutError:
                return Outcome(due, None, "timeout")
            except httpx.ConnectError:
                return Outcome(due, None, "connection refused")
            except httpx.HTTPError as error:
                return Outcome(due, None, _coarse(error))
            except Exception:  # the endpoint's failure, not the round's
                log.exception("webhook delivery %s failed unexpectedly", due.id)
                return Outcome(due, None, "delivery failed")
        return Outcome(due, status, None if 200 <= status < 300 else f"HTTP {status}")

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to the address just checked for the URL's host; the answer's status."""
        target = await checked(
            url,
            allow_private=self._settings.webhook_allow_private_networks,
            resolver=self._resolver,
            https_only=self._settings.environment == "production",
        )
        extensions = {"sni_hostname": target.tls_name} if target.tls_name else None
        # Streamed and never read: an endpoint's answer body is not our business.
        async with self._http.stream(
            "POST",
            target.url,
            content=body,
            headers={**headers, "Host": target.host_header},
            timeout=self._settings.webhook_timeout_seconds,
            extensions=extensions,
        ) as response:
            return response.status_code

    async def _record(self, outcomes: list[Outcome]) -> None:
        now = self._clock.now()
        settings = self._settings
        async with self._engine.connect() as connection:
            await connection.execution_options(**WRITE)
            async with connection.begin():
                for outcome in outcomes:
                    due = outcome.due
                    values: dict[str, Any] = {
                        "attempts": due.attempts + 1,
                        "last_status_code": outcome.status_code,
                        "last_error": outcome.error,
                    }
                    give_up_at = due.created_at + timedelta(
                        seconds=settings.webhook_give_up_seconds
                    )
                    if outcome.delivered:
                        values |= {
                            "status": "delivered",
                            "delivered_at": now,
                            "next_attempt_at": None,
                        }
                    elif now >= give_up_at:
                        values |= {"status": "dead", "next_attempt_at": None}
                    else:
                        delay = retry_delay(
                            due.attempts + 1,
                            settings.webhook_retry_base_seconds,
                            settings.webhook_retry_max_seconds,
                        )
                        values["next_attempt_at"] = min(now + timedelta(seconds=delay), give_up_at)
                    await connection.execute(
                        update(deliveries)
                        # Still pending: its endpoint may have been deleted meanwhile.
                        .where(deliveries.c.id == due.id, deliveries.c.status == "pending")
                        .values(**values)
                    )


def _coarse(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.RemoteProtocolError):
        return "not an HTTP answer"
    return "connection failed"


async def deliver_webhooks_forever(bus: MessageBus) -> None:
    """The app's background job: one HTTP client, rounds every webhook_interval_seconds."""
    settings = bus.deps.settings
    limits = httpx.Limits(max_connections=settings.webhook_concurrency)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as http:
        sender = WebhookSender(bus.engine, bus.deps.clock, settings, http)
        await run_periodically(
            "webhook deliveries",
            lambda _: sender.deliver_due(),
            bus,
            settings.webhook_interval_seconds,
        )
