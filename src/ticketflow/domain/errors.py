"""The one error hierarchy: every failure a user can cause, each with its HTTP status."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """A request the domain refuses; `code` names the problem type, `status` its HTTP status."""

    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def extensions(self) -> dict[str, object]:
        """Members the problem+json body carries besides the standard ones (RFC 9457 calls
        them extension members)."""
        return {}


class NotFound(DomainError):
    status, code, title = 404, "not-found", "Not found"


class AuthenticationFailed(DomainError):
    status, code, title = 401, "unauthenticated", "Authentication required"


class PermissionDenied(DomainError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotAdmitted(PermissionDenied):
    """The event's waiting room is on and the booking came without a valid admission (none,
    expired, spent, or another buyer's or event's)."""

    code, title = "not-admitted", "Not admitted from the waiting room"


class Conflict(DomainError):
    """The request is valid but the current state of a resource does not allow it."""

    status, code, title = 409, "conflict", "Conflict with the current state"


class NotEnoughTickets(Conflict):
    code, title = "not-enough-tickets", "Not enough tickets left"


class SalesClosed(Conflict):
    code, title = "sales-closed", "Ticket sales are closed"


class BuyerLimitReached(Conflict):
    """A buyer asked for more tickets than the event (or ticket type) allows one buyer;
    `remaining` says how many they may still hold."""

    code, title = "buyer-limit-reached", "Buyer limit reached"

    def __init__(self, detail: str, *, remaining: int) -> None:
        super().__init__(detail, field="quantity")
        self.remaining = remaining

    def extensions(self) -> dict[str, object]:
        return {"remaining": self.remaining}


class RefundNotAllowed(Conflict):
    """The buyer may no longer refund or cancel a paid booking; `detail` says why."""

    code, title = "refund-not-allowed", "Refund not allowed"


class RoomNotOpen(Conflict):
    code, title = "waiting-room-not-open", "The waiting room is not open yet"


class LimitReached(Conflict):
    code, title = "limit-reached", "Limit reached"


class InvalidTransition(Conflict):
    code, title = "invalid-state", "Not possible in the current state"


class AlreadyExists(Conflict):
    code, title = "already-exists", "Already exists"


class AlreadyCheckedIn(Conflict):
    """A ticket scanned again: the body says when it was first admitted (`admitted_at`)."""

    code, title = "already-checked-in", "Ticket already admitted"

    def __init__(self, detail: str, *, admitted_at: datetime) -> None:
        super().__init__(detail)
        self.admitted_at = admitted_at

    def extensions(self) -> dict[str, object]:
        return {"admitted_at": self.admitted_at.isoformat()}


class TicketVoid(Conflict):
    """The ticket's booking was refunded or cancelled: it admits nobody."""

    code, title = "ticket-void", "Ticket no longer valid"


class InvalidInput(DomainError):
    """Well-formed input that breaks a business rule (a 422 naming the field)."""

    status, code, title = 422, "invalid-input", "Invalid input"


class InvalidResetToken(InvalidInput):
    """A password reset token that is forged, used, expired, or for a disabled account: one
    answer for all, so it tells nothing about the account."""

    code, title = "invalid-reset-token", "Invalid password reset token"


class PaymentDeclined(DomainError):
    """The provider refused the card; the booking stays held until its hold expires."""

    status, code, title = 402, "payment-declined", "Payment declined"


class ServiceUnavailable(DomainError):
    """A system we depend on can't answer now; nothing was lost, retry after `retry_after`."""

    status, code, title = 503, "service-unavailable", "Temporarily unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Overloaded(ServiceUnavailable):
    """This process has more requests than it can answer promptly: refused before any work."""

    code, title = "overloaded", "Too busy right now"


class TooManyRequests(DomainError):
    """A rate limit is used up; the caller may try again after `retry_after` seconds."""

    status, code, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ReplayedCallback(DomainError):
    """A signed callback whose event id was already applied: refused, nothing changes."""

    status, code, title = 400, "replayed-callback", "Callback already received"


class RoomUnavailable(ServiceUnavailable):
    """The waiting room's line was lost (Redis emptied or restarted): it stays closed rather
    than admit anyone a second time or out of turn."""

    code, title = "waiting-room-unavailable", "Waiting room unavailable"
