"""How pages show money: integer minor units with their currency."""

from __future__ import annotations

from ticketflow.web.formatting import money


def test_money_is_shown_with_its_symbol_and_minor_unit() -> None:
    assert money(1250, "EUR") == "€12.50"
    assert money(123456789, "usd") == "$1,234,567.89"
    assert money(1500, "JPY") == "¥1,500"  # no minor unit
    assert money(999, "SEK") == "9.99 SEK"  # no symbol of ours: its code
