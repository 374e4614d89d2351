"""Admins: every account, and changing roles (e.g. making an organizer a manager)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
from ticketflow.api.schemas import NO_NUL, AuditPage, RoleChange, Timestamp, UserOut, UserPage
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


@router.patch("/users/{user_id}", summary="Change an account's role")
async def change_role(
    user_id: UUID, body: RoleChange, actor: CurrentActor, bus: Bus, db: ReadConnection
) -> UserOut:
    await bus.handle(cmd.ChangeUserRole(actor=actor, user_id=user_id, role=body.role))
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
