"""Admission tokens: a JWT that a waiting room's place was admitted, for one buyer on one event
until its session ends. Signed like our access tokens (the same keys, `iss` and `aud`, its own
`typ`, so neither passes for the other) and checked here without any storage, which is what
lets the booking hot path check one for the price of a dictionary lookup (verified tokens are
kept, as `Tokens` keeps access tokens).

Claims: `sub` the buyer, `evt` the event, `jti` the place's ticket id (one per admission),
`iat` the admission, `exp` the end of its session. Made from the place alone, the same token
comes back from every instance and every status read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import jwt

from ticketflow.adapters.clock import Clock
from ticketflow.adapters.security import SigningKeys
from ticketflow.domain.errors import NotAdmitted

KIND = "admission"
KEPT = 100_000  # verified tokens remembered: every admitted buyer of a big sale


@dataclass(frozen=True)
class Admission:
    user_id: UUID
    event_id: UUID
    ticket_id: UUID
    expires_at: float  # epoch seconds


class AdmissionTokens:
    def __init__(self, keys: SigningKeys, clock: Clock, *, issuer: str, audience: str) -> None:
        self._keys, self._clock = keys, clock
        self._issuer, self._audience = issuer, audience
        self._verified: dict[str, Admission] = {}

    def issue(
        self,
        user_id: UUID,
        event_id: UUID,
        ticket_id: UUID,
        admitted_at: datetime,
        session: timedelta,
    ) -> str:
        claims = {
            "sub": str(user_id),
            "evt": str(event_id),
            "jti": str(ticket_id),
            "typ": KIND,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": admitted_at,
            "exp": admitted_at + session,
        }
        return self._keys.sign(claims)

    def admission(self, token: str | None, user_id: UUID, event_id: UUID) -> Admission:
        """The admission `token` grants `user_id` on `event_id` now; NotAdmitted otherwise."""
        if not token:
            raise NotAdmitted(
                "This event's waiting room is on: join it (POST /events/{id}/queue) and send "
                "the admission token in the TicketFlow-Admission header."
            )
        admission = self._verified.get(token) or self._verify(token)
        if admission.user_id != user_id:
            raise NotAdmitted("This admission is another buyer's.")
        if admission.event_id != event_id:
            raise NotAdmitted("This admission is for another event.")
        if admission.expires_at <= self._clock.now().timestamp():
            raise NotAdmitted("This admission's session has ended.")
        return admission

    def _verify(self, token: str) -> Admission:
        try:
            claims = self._keys.verified_claims(
                token,
                issuer=self._issuer,
                audience=self._audience,
                require=["exp", "sub", "jti", "iss", "aud"],
            )
            if claims is None:
                raise NotAdmitted("The admission token is signed with an unknown key.")
            if claims.get("typ") != KIND:
                raise NotAdmitted("This is not an admission token.")
            admission = Admission(
                UUID(claims["sub"]), UUID(claims["evt"]), UUID(claims["jti"]), float(claims["exp"])
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as error:
            raise NotAdmitted("The admission token is invalid.") from error
        if len(self._verified) >= KEPT:
            self._verified.clear()
        self._verified[token] = admission
        return admission
