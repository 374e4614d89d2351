"""Organizers' webhook endpoints as the unit of work changes them: counted, added, disabled."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import users, webhook_deliveries, webhook_endpoints


class WebhookRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def live_count_of(self, owner_id: UUID) -> int:
        """How many live endpoints the owner has. Their account is locked first, until this
        transaction ends, so two registrations of one owner count in turn and never pass the
        limit together (NO KEY: the endpoint being inserted only key-shares the account, for its
        foreign key). The count is a statement of its own, after the lock: it then sees what the
        last holder committed. SQLite's write transaction serializes anyway."""
        await self._connection.execute(
            select(users.c.id).where(users.c.id == owner_id).with_for_update(key_share=True)
        )
        live = await self._connection.scalar(
            select(func.count())
            .select_from(webhook_endpoints)
            .where(
                webhook_endpoints.c.owner_id == owner_id,
                webhook_endpoints.c.disabled_at.is_(None),
            )
        )
        return int(live or 0)

    async def add(self, endpoint: dict[str, Any]) -> None:
        await self._connection.execute(insert(webhook_endpoints).values(endpoint))

    async def disable(self, endpoint_id: UUID, owner_id: UUID | None, now: datetime) -> bool:
        """Disable the live endpoint (one of `owner_id`'s; None: anyone's) and give up its pending
        deliveries; False if there is no such live endpoint. The update is conditional, so of two
        deletions at once one disables it and the other finds it gone."""
        disabling = update(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.disabled_at.is_(None)
        )
        if owner_id is not None:
            disabling = disabling.where(webhook_endpoints.c.owner_id == owner_id)
        disabled = await self._connection.execute(disabling.values(disabled_at=now))
        if disabled.rowcount == 0:
            return False
        await self._connection.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.endpoint_id == endpoint_id,
                webhook_deliveries.c.status == "pending",
            )
            .values(status="dead", next_attempt_at=None, last_error="endpoint deleted")
        )
        return True
