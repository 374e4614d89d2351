"""Webhook signatures, both ways: the one HMAC scheme our deliveries are signed with
(`TicketFlow-Signature`, documented in the README for receivers) and the payment provider signs
its callbacks with (`Provider-Signature`).

`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`: the timestamp is signed with the
body, so a receiver can refuse an old delivery replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "TicketFlow-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance_seconds: int) -> bool:
    """Whether `header` signs exactly `body` under `secret` at a time within `tolerance_seconds`
    of `now` (either side). Several `v1=` entries may come, one per secret while the sender
    rotates its secret; a header that is not one `t=` of digits and at least one `v1=` is no
    signature."""
    timestamp: str | None = None
    given: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                return False
            timestamp = value
        elif name == "v1":
            given.append(value)
    if timestamp is None or not given or abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = signature(secret, int(timestamp), body).encode()
    # Every candidate is compared (no early exit), each in constant time: how long this takes
    # tells nothing about which one, or how much of it, matched.
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in given]
    return any(matches)
