"""The payment gateway: an interface, and its HTTP client for the provider with retries and a
circuit breaker. The provider dedupes on the key we send, so retrying a charge is safe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import stamina
from circuitbreaker import CircuitBreaker, CircuitBreakerError

from ticketflow.config import Settings


@dataclass(frozen=True)
class Charge:
    id: str
    key: str
    amount_minor: int
    currency: str
    succeeded: bool
    decline_reason: str | None


@dataclass(frozen=True)
class Refund:
    id: str
    charge_id: str
    amount_minor: int


class ProviderUnavailable(Exception):
    """No usable answer (down, 5xx, timeout): the charge may or may not have happened."""


class GatewayUnavailable(Exception):
    """Retries are spent or the breaker is open; `retry_after` seconds is a fair wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRefused(Exception):
    """A definite 4xx refusal other than a decline (e.g. over-refund): retrying won't help."""


class PaymentGateway(Protocol):
    async def charge(
        self, key: str, amount_minor: int, currency: str, payment_method: str, reference: str
    ) -> Charge: ...

    async def find_charge(self, key: str) -> Charge | None: ...

    async def refund(self, key: str, charge_id: str, amount_minor: int) -> Refund: ...

    async def aclose(self) -> None: ...


def charge_from(body: dict[str, Any]) -> Charge:
    return Charge(
        id=body["id"],
        key=body["idempotency_key"],
        amount_minor=body["amount_minor"],
        currency=body["currency"],
        succeeded=body["status"] == "succeeded",
        decline_reason=body.get("decline_reason"),
    )


class HttpPaymentGateway:
    """Talks to `ticketflow payment-provider` (or anything speaking its API)."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            base_url=settings.payment_provider_url,
            timeout=httpx.Timeout(settings.payment_timeout_seconds),
        )
        self._attempts = settings.payment_retry_attempts
        self.breaker = CircuitBreaker(
            failure_threshold=settings.payment_breaker_failure_threshold,
            recovery_timeout=settings.payment_breaker_recovery_seconds,
            expected_exception=ProviderUnavailable,
            name="payment-provider",
        )
        self._send_guarded = self.breaker.decorate(self._send_with_retries)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def charge(
        self, key: str, amount_minor: int, currency: str, payment_method: str, reference: str
    ) -> Charge:
        body = await self._send(
            "POST",
            "/v1/charges",
            key=key,
            json={
                "amount_minor": amount_minor,
                "currency": currency,
                "payment_method": payment_method,
                "reference": reference,
            },
        )
        return charge_from(body)

    async def find_charge(self, key: str) -> Charge | None:
        body = await self._send("GET", "/v1/charges", params={"idempotency_key": key})
        items = body.get("items", [])
        return charge_from(items[0]) if items else None

    async def refund(self, key: str, charge_id: str, amount_minor: int) -> Refund:
        body = await self._send(
            "POST",
            "/v1/refunds",
            key=key,
            json={"charge_id": charge_id, "amount_minor": amount_minor},
        )
        return Refund(id=body["id"], charge_id=body["charge_id"], amount_minor=body["amount_minor"])

    async def _send(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            body: dict[str, Any] = await self._send_guarded(method, path, key, **kwargs)
            return body
        except CircuitBreakerError as error:
            raise GatewayUnavailable(
                "The payment provider is failing; not calling it for now.",
                retry_after=max(1, int(self.breaker.open_remaining)),
            ) from error
        except ProviderUnavailable as error:
            raise GatewayUnavailable(
                f"The payment provider did not answer: {error}", retry_after=2
            ) from error

    async def _send_with_retries(
        self, method: str, path: str, key: str | None, **kwargs: Any
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        # Only "no usable answer" is retried; a decline or a 4xx is an answer.
        async for attempt in stamina.retry_context(
            on=ProviderUnavailable,
            attempts=self._attempts,
            wait_initial=0.05,
            wait_max=1.0,
            wait_jitter=0.1,
            timeout=None,
        ):
            with attempt:
                try:
                    response = await self._client.request(method, path, headers=headers, **kwargs)
                except httpx.TransportError as error:  # timeouts, refused, reset
                    raise ProviderUnavailable(type(error).__name__) from error
                if response.status_code >= 500:
                    raise ProviderUnavailable(f"HTTP {response.status_code}")
        if response.status_code >= 400 and response.status_code != 402:
            raise ProviderRefused(f"HTTP {response.status_code}: {response.text[:200]}")
        result: dict[str, Any] = response.json()
        return result
