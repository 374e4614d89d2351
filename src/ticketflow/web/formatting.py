"""How pages show money and times: integer minor units with their currency, UTC instants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}
# ISO 4217 currencies without a minor unit, among those an organizer is likely to use.
NO_MINOR_UNIT = frozenset({"JPY", "KRW", "ISK", "CLP", "VND"})


def money(minor: int, currency: str) -> str:
    """1250, 'EUR' -> '€12.50'; 1500, 'JPY' -> '¥1,500'; an unknown currency by its code."""
    code = currency.upper()
    amount = f"{minor:,}" if code in NO_MINOR_UNIT else f"{minor / 100:,.2f}"
    symbol = SYMBOLS.get(code)
    return f"{symbol}{amount}" if symbol else f"{amount} {code}"


def when(moment: datetime) -> str:
    """'Sat 14 Mar 2026, 19:30 UTC'."""
    return moment.strftime("%a %-d %b %Y, %H:%M UTC")


def iso(moment: datetime) -> str:
    """For <time datetime> and scripts: an ISO 8601 instant."""
    return moment.isoformat()


FILTERS: dict[str, Callable[..., Any]] = {"money": money, "when": when, "iso": iso}
