"""Admins: every account; changing roles (e.g. making an organizer a manager), disabling."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
from ticketflow.api.schemas import NO_NUL, AuditPage, Timestamp, UserOut, UserPage, UserPatch
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
from ticketflow.services.audit import AuditFilter, audit_events
from ticketflow.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", summary="All accounts")
async def list_users(
    actor: CurrentActor, db: ReadConnection, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> UserPage:
    page = await queries.list_users(db, actor, cursor=cursor, limit=limit)
    return UserPage.model_validate(page, from_attributes=True)


@router.patch(
    "/users/{user_id}",
    summary="Change an account's role, or disable or enable it",
    description="A new role or disabling ends the account's sessions: its tokens are refused "
    "from the next request on, on every instance; a disabled account can't sign in or refresh.",
    responses={409: {"description": "An admin may not disable their own account"}},
)
async def update_user(
    user_id: UUID, body: UserPatch, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> UserOut:
    await bus.handle(cmd.UpdateUser(actor, user_id, body.role, body.disabled))
    return UserOut.model_validate(await queries.user(db, user_id))


@router.get("/audit", summary="The audit trail: domain events, oldest first (admins)")
async def audit(
    actor: CurrentActor,
    db: ReadConnection,
    stream_type: Annotated[
        str | None, Query(max_length=32, pattern=NO_NUL, examples=["booking"])
    ] = None,
    stream_id: UUID | None = None,
    type: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, examples=["booking.held"])
    ] = None,
    actor_id: UUID | None = None,
    since: Annotated[Timestamp | None, Query(description="From (inclusive)")] = None,
    until: Annotated[Timestamp | None, Query(description="Until (exclusive)")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> AuditPage:
    where = AuditFilter(stream_type, stream_id, type, actor_id, since, until)
    page = await audit_events(db, actor, where, cursor=cursor, limit=limit)
    return AuditPage.model_validate(page, from_attributes=True)
