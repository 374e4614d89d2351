"""The payment gateway: an interface, and its HTTP client for the provider with retries and a
circuit breaker. The provider dedupes on the key we send, so retrying a charge is safe.

The wire is a `ProviderTransport`: aiohttp in production (a third of httpx's CPU per charge,
bench/README.md); tests hand in one that reaches a provider served in-process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
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


@dataclass(frozen=True)
class ProviderAnswer:
    status: int
    body: bytes


class ProviderTransport(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> ProviderAnswer:
        """The provider's answer, whatever its status; ProviderUnavailable if none came."""
        ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """Keep-alive connections to the provider at `base_url`, each request within `timeout`."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self._base_url, self._timeout = base_url, aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None  # made on first use, in the loop

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> ProviderAnswer:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self._base_url, timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0)
            )
        try:
            async with self._session.request(
                method, path, headers=headers, json=body, params=params
            ) as response:
                return ProviderAnswer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as error:  # refused, reset, timed out
            raise ProviderUnavailable(type(error).__name__) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


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

    def __init__(self, settings: Settings, transport: ProviderTransport | None = None) -> None:
        self._transport = transport or AiohttpTransport(
            settings.payment_provider_url, settings.payment_timeout_seconds
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
        await self._transport.aclose()

    async def charge(
        self, key: str, amount_minor: int, currency: str, payment_method: str, reference: str
    ) -> Charge:
        body = await self._send(
            "POST",
            "/v1/charges",
            key=key,
            body={
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
            body={"charge_id": charge_id, "amount_minor": amount_minor},
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
                answer = await self._transport.request(method, path, headers, **kwargs)
                if answer.status >= 500:
                    raise ProviderUnavailable(f"HTTP {answer.status}")
        if answer.status >= 400 and answer.status != 402:
            raise ProviderRefused(f"HTTP {answer.status}: {answer.body[:200]!r}")
        result: dict[str, Any] = json.loads(answer.body)
        return result
