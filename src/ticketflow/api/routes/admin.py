"""Admins: every account, and changing roles (e.g. making an organizer a manager)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from ticketflow.api.deps import Bus, CurrentActor, Cursor, Limit, ReadConnection
from ticketflow.api.schemas import RoleChange, UserOut, UserPage
from ticketflow.domain import commands as cmd
from ticketflow.services import queries
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
