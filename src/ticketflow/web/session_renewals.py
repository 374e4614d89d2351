"""Renewing a browser session's expired access token once, however many of its requests notice.

A refresh token is spent by its first use, and a second use is taken for theft (the session
ends: services/accounts.py). A browser sends its requests concurrently (a page, a fragment, a
second tab) and all carry the same cookie until the first answer rewrites it; so in this process
they share one renewal, and one arriving a moment later with the old cookie gets the same new
pair. Across processes the renewal is not shared: each page asks for at most one personalised
fragment, which keeps the requests of one page view to one.
"""

from __future__ import annotations

import hashlib

from ticketflow.adapters.single_flight import SingleFlight
from ticketflow.domain import commands as cmd
from ticketflow.services.accounts import TokenPair
from ticketflow.services.messagebus import MessageBus

KEPT_SECONDS = 10.0  # long enough for a browser's requests in flight to see the new cookie
MOST_KEPT = 10_000


class SessionRenewals:
    def __init__(self) -> None:
        self._flights: SingleFlight[str, TokenPair] = SingleFlight()
        self._recent: dict[str, tuple[TokenPair, float]] = {}

    async def renew(self, bus: MessageBus, refresh_token: str) -> TokenPair:
        """The new pair for `refresh_token` (AuthenticationFailed if the session ended)."""
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        now = bus.deps.clock.now().timestamp()
        kept = self._recent.get(key)
        if kept is not None and kept[1] > now:
            return kept[0]
        pair = await self._flights.run(key, lambda: bus.handle(cmd.RefreshSession(refresh_token)))
        if len(self._recent) >= MOST_KEPT:
            self._recent = {k: v for k, v in self._recent.items() if v[1] > now}
        self._recent[key] = (pair, now + KEPT_SECONDS)
        return pair
