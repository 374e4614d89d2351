"""Webhook signatures: `Provider-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`."""

from __future__ import annotations

import hashlib
import hmac


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    # The timestamp is signed with the body so a captured request cannot be replayed later.
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Provider-Signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance_seconds: int = 300) -> bool:
    """True when `header` signs exactly `body` with `secret` within `tolerance_seconds` of `now`.

    Several `v1=` entries are allowed (one per secret while a secret is being rotated).
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, body, timestamp)
    # Compare against every candidate (no early exit) so timing reveals nothing about which.
    matches = [hmac.compare_digest(expected.encode(), given.encode()) for given in signatures]
    return any(matches)
