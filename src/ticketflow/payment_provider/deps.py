"""What the routes are given: the provider's parts, and the caller's idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from ticketflow.payment_provider.errors import IdempotencyKeyMissing
from ticketflow.payment_provider.faults import FaultInjector
from ticketflow.payment_provider.ledger import Ledger
from ticketflow.payment_provider.webhooks import WebhookSender

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Provider:
    """The parts that live as long as the process; built by the app's lifespan."""

    ledger: Ledger
    faults: FaultInjector
    webhooks: WebhookSender


def _provider(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


def _idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> str:
    # Without a key a retry could charge twice, so the provider refuses to guess (400, not 422).
    if key is None or not key.strip():
        raise IdempotencyKeyMissing("Send an Idempotency-Key header with every charge and refund.")
    if len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyMissing(f"Idempotency-Key is limited to {MAX_KEY_LENGTH} characters.")
    return key


ProviderDep = Annotated[Provider, Depends(_provider)]
IdempotencyKeyDep = Annotated[str, Depends(_idempotency_key)]
