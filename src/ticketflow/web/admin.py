"""The admin console: accounts (search, role, disable or enable) and the audit trail."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import Response

from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.services import queries
from ticketflow.services.audit import AuditFilter, audit_events
from ticketflow.services.pagination import DEFAULT_LIMIT
from ticketflow.web.forms import FieldErrors
from ticketflow.web.pages import PageRoute, bus_of, private_page, see_other
from ticketflow.web.session import WebSession, require_role

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Admin = Annotated[WebSession, Depends(require_role(Role.ADMIN))]
Cursor = Annotated[str | None, Query(max_length=512)]
Filter = Annotated[str, Query(max_length=64)]


def _users_page_url(back: str) -> str:
    """Back to the list as it was (search, page); only ever a page of that list."""
    return back if back.startswith("/admin/users") else "/admin/users"


@router.get("/admin/users")
async def users(
    request: Request, admin: Admin, email: Filter = "", cursor: Cursor = None
) -> Response:
    async with bus_of(request).engine.connect() as db:
        page = await queries.list_users(
            db, admin.actor, cursor=cursor, limit=DEFAULT_LIMIT, email_contains=email.strip()
        )
    return await private_page(
        request, "admin/users.html", page=page, email=email, roles=list(Role), me=admin.actor
    )


@router.post("/admin/users/{user_id}")
async def update_user(
    request: Request,
    user_id: UUID,
    admin: Admin,
    role: Annotated[Role | None, Form()] = None,
    disabled: Annotated[bool | None, Form()] = None,
    back: Annotated[str, Form(max_length=1024)] = "/admin/users",
) -> Response:
    await bus_of(request).handle(cmd.UpdateUser(admin.actor, user_id, role, disabled))
    return see_other(_users_page_url(back))


def _uuid_or_error(name: str, text: str, errors: FieldErrors) -> UUID | None:
    if not text.strip():
        return None
    try:
        return UUID(text.strip())
    except ValueError:
        errors[name] = "Enter an id such as 0190f0a2-6b1c-7c3e-9d4f-1a2b3c4d5e6f."
        return None


@router.get("/admin/audit")
async def audit(
    request: Request,
    admin: Admin,
    stream_type: Filter = "",
    stream_id: Filter = "",
    type: Filter = "",
    actor_id: Filter = "",
    cursor: Cursor = None,
) -> Response:
    """The domain events, oldest first, filtered; each one's data shown as JSON (escaped)."""
    errors: FieldErrors = {}
    where = AuditFilter(
        stream_type.strip() or None,
        _uuid_or_error("stream_id", stream_id, errors),
        type.strip() or None,
        _uuid_or_error("actor_id", actor_id, errors),
    )
    filters = {"stream_type": stream_type, "stream_id": stream_id, "type": type}
    filters["actor_id"] = actor_id
    events: list[dict[str, Any]] = []
    next_cursor = None
    if not errors:
        async with bus_of(request).engine.connect() as db:
            page = await audit_events(db, admin.actor, where, cursor=cursor, limit=DEFAULT_LIMIT)
        events = [{**event, "shown": json.dumps(event["data"], indent=2)} for event in page.items]
        next_cursor = page.next_cursor
    return await private_page(
        request,
        "admin/audit.html",
        422 if errors else 200,
        events=events,
        next_cursor=next_cursor,
        filters=filters,
        errors=errors,
    )
