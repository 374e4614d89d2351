"""The sandbox provider served in-process, as the payment gateway's transport: the tests' way to
pay without a provider process (the end-to-end tests use the real one, over aiohttp)."""

from __future__ import annotations

from typing import Any

import httpx

from ticketflow.adapters.payment_gateway import ProviderAnswer, ProviderUnavailable


class InProcessProvider:
    """A `ProviderTransport` over an httpx client (an ASGI transport to the provider's app)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> ProviderAnswer:
        try:
            response = await self.client.request(
                method, path, headers=headers, json=body, params=params
            )
        except httpx.TransportError as error:
            raise ProviderUnavailable(type(error).__name__) from error
        return ProviderAnswer(response.status_code, response.content)

    async def aclose(self) -> None:
        await self.client.aclose()
