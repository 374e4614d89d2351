"""Webhooks: each recorded charge or refund is POSTed, signed, to the configured URL.

Deliveries run as tasks of their own, so a slow or failing receiver never delays an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Literal

import httpx
from pydantic import BaseModel

from ticketflow.payment_provider.signing import sign

log = logging.getLogger(__name__)

EventType = Literal["charge.succeeded", "charge.declined", "refund.succeeded"]
SIGNATURE_HEADER = "Provider-Signature"


class WebhookSender:
    def __init__(
        self,
        url: str | None,
        secret: str,
        client: httpx.AsyncClient,
        attempts: int = 5,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.url = url
        self._secret = secret
        self._client = client
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._in_flight: set[asyncio.Task[bool]] = set()

    def send(self, event_type: EventType, data: BaseModel) -> None:
        """Starts delivering the event in the background; a no-op without a webhook URL."""
        if self.url is None:
            return
        created = int(time.time())
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "type": event_type,
            "created": created,
            "data": data.model_dump(mode="json"),
        }
        task = asyncio.create_task(self._deliver(self.url, json.dumps(event).encode()))
        self._in_flight.add(task)  # a strong reference, or the task may vanish mid-delivery
        task.add_done_callback(self._in_flight.discard)

    async def _deliver(self, url: str, body: bytes) -> bool:
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
            # Signed at each attempt: a retry hours later must not look stale to the receiver.
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            }
            try:
                answer = await self._client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                log.warning("webhook attempt %d to %s failed: %r", attempt + 1, url, error)
                continue
            if answer.is_success:
                return True
            log.warning(
                "webhook attempt %d to %s answered %d", attempt + 1, url, answer.status_code
            )
        log.error("webhook to %s given up after %d attempts", url, self._attempts)
        return False

    async def drain(self) -> None:
        """Waits until every delivery started so far has succeeded or given up."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight)

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Gives deliveries in flight a moment to finish, then abandons the rest."""
        if self._in_flight:
            _, unfinished = await asyncio.wait(self._in_flight, timeout=grace_seconds)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
