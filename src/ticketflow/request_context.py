"""What code running for one HTTP request knows about it: its id and, once authenticated, its
caller. Set by the HTTP layer; read by the event store (meta) and by every log line."""

from __future__ import annotations

from contextvars import ContextVar
from uuid import UUID

# Set by the HTTP layer for each request; recorded with every domain event it causes.
current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


class Caller:
    """A slot the request's middleware creates and the auth dependency fills. Mutated, not
    re-set: a ContextVar set inside a dependency would not be seen by the middleware around it
    whenever the two run in different contexts (a task group, a thread)."""

    __slots__ = ("user_id",)

    def __init__(self) -> None:
        self.user_id: UUID | None = None


current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)


def note_caller(user_id: UUID) -> None:
    """Record who the current request authenticated as (no-op outside a request)."""
    caller = current_caller.get()
    if caller is not None:
        caller.user_id = user_id
