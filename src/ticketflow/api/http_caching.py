"""HTTP caching of the public catalog reads: a strong ETag of the exact bytes sent, If-None-Match
answered 304 without a body, and Cache-Control saying who may keep an answer and how long.

Only an answer that is the same for every caller is `public`: a draft shown to its organizer, or
an organizer's own list, is `private, no-store`, so no shared cache (nginx, a CDN) keeps it.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

# One second, as the availability shown is (TICKETFLOW_AVAILABILITY_CACHE_TTL_SECONDS); a cache
# may answer a lapsed copy up to 5 s more while it fetches the next one.
PUBLIC = "public, max-age=1, stale-while-revalidate=5"
PRIVATE = "private, no-store"
JSON = "application/json"

DOCUMENTED_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "Strong: a hash of exactly the body's bytes",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": f"`{PUBLIC}` when the answer is the same for everyone, else `{PRIVATE}`",
        "schema": {"type": "string"},
    },
    "X-Cache": {
        "description": "`hit`: answered from this instance's copies; `miss`: it had to read",
        "schema": {"type": "string", "enum": ["hit", "miss"]},
    },
}
CACHED_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": DOCUMENTED_HEADERS},
    304: {
        "description": "Not Modified: `If-None-Match` named the current ETag; no body",
        "headers": DOCUMENTED_HEADERS,
    },
}


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 13.1.2: a list of tags compared weakly (W/ ignored), or `*` for any."""
    if if_none_match == etag:  # what a client that kept our ETag sends
        return True
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def public_answer(body: bytes, etag: str, hit: bool, if_none_match: str | None) -> Response:
    headers = {"ETag": etag, "Cache-Control": PUBLIC, "X-Cache": "hit" if hit else "miss"}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)


def private_answer(body: bytes, hit: bool) -> Response:
    headers = {"Cache-Control": PRIVATE, "X-Cache": "hit" if hit else "miss"}
    return Response(body, media_type=JSON, headers=headers)
