"""How our webhook deliveries are signed (documented in the README for receivers).

`TicketFlow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`: the
timestamp is signed with the body, so a receiver can refuse an old delivery replayed later.
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
