"""Public pages kept as rendered bytes, like the API's stored bodies (api/stored_bodies.py): a
page is rendered again only when one of the objects it was rendered from is another object (the
process's copies renew an event's row, or its availability, as new objects only when their value
changed: adapters/process_copies.py), so a page is as fresh as the API's read of the same copies
and a hit costs no template rendering."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable

MAX_KEPT = 10_000


def strong_etag(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


class RenderedPages:
    """This process's rendered public pages, each with the objects it was rendered from."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, tuple[tuple[object, ...], bytes, str]] = {}

    def page(
        self, key: Hashable, sources: tuple[object, ...], render: Callable[[], bytes]
    ) -> tuple[bytes, str]:
        """The page `key` as rendered from exactly `sources` (by identity), and its ETag."""
        kept = self._kept.get(key)
        if kept is not None and all(
            now is then for now, then in zip(sources, kept[0], strict=True)
        ):
            return kept[1], kept[2]
        body = render()
        etag = strong_etag(body)
        if len(self._kept) >= MAX_KEPT:  # a bound, not an eviction policy: events are few
            self._kept.clear()
        self._kept[key] = (sources, body, etag)
        return body, etag
