"""The one pagination helper: opaque keyset cursors and pages of at most 50 items."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from ticketflow.domain.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 50

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([_plain(value) for value in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The key a cursor stands for, parsed as `kinds` (datetime, UUID, int, str)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError(cursor)
        parsed: list[Any] = []
        for kind, value in zip(kinds, values, strict=True):
            parsed.append(datetime.fromisoformat(value) if kind is datetime else kind(value))
        return tuple(parsed)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as error:
        raise InvalidInput("The cursor is not one this API gave out.", field="cursor") from error


def page_of(rows: Sequence[T], limit: int, key: Any) -> Page[T]:
    """`rows` were fetched with limit + 1; the extra row only says that more exist."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(key(items[-1])) if more and items else None)
