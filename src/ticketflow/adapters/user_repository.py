"""Users and their login sessions (refresh-token families)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import auth_sessions, users
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Role, User


def _user(row: Row[*tuple[Any, ...]]) -> User:
    return User(id=row.id, email=row.email, role=Role(row.role), version=row.version)


class UserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, user: User, password_hash: str, now: datetime) -> None:
        await self._connection.execute(
            insert(users).values(
                id=user.id,
                email=user.email,
                password_hash=password_hash,
                role=user.role.value,
                version=user.version,
                created_at=now,
            )
        )

    async def get(self, user_id: UUID) -> User | None:
        row = (
            await self._connection.execute(
                select(users.c.id, users.c.email, users.c.role, users.c.version).where(
                    users.c.id == user_id
                )
            )
        ).one_or_none()
        return _user(row) if row else None

    async def credentials(self, email: str) -> tuple[User, str] | None:
        row = (
            await self._connection.execute(
                select(
                    users.c.id, users.c.email, users.c.role, users.c.version, users.c.password_hash
                ).where(users.c.email == email)
            )
        ).one_or_none()
        return (_user(row), row.password_hash) if row else None

    async def email_taken(self, email: str) -> bool:
        found = await self._connection.scalar(select(users.c.id).where(users.c.email == email))
        return found is not None

    async def save_role(self, user: User) -> None:
        result = await self._connection.execute(
            update(users)
            .where(users.c.id == user.id, users.c.version == user.version - 1)
            .values(role=user.role.value, version=user.version)
        )
        if result.rowcount != 1:
            raise Conflict("The user was changed at the same time; try again.")


class SessionRepository:
    """One row per refresh-token family; only the newest token of a family is valid."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def start(
        self,
        session_id: UUID,
        user_id: UUID,
        token_id: UUID,
        expires_at: datetime,
        now: datetime,
    ) -> None:
        await self._connection.execute(
            insert(auth_sessions).values(
                id=session_id,
                user_id=user_id,
                current_token_id=token_id,
                generation=1,
                expires_at=expires_at,
                created_at=now,
            )
        )

    async def rotate(
        self,
        session_id: UUID,
        presented: UUID,
        new_token: UUID,
        expires_at: datetime,
        now: datetime,
    ) -> tuple[UUID, int] | None:
        """Swap the presented (current) token for a new one; None if it is not current."""
        row = (
            await self._connection.execute(
                update(auth_sessions)
                .where(
                    auth_sessions.c.id == session_id,
                    auth_sessions.c.current_token_id == presented,
                    auth_sessions.c.ended_at.is_(None),
                    auth_sessions.c.expires_at > now,
                )
                .values(
                    current_token_id=new_token,
                    generation=auth_sessions.c.generation + 1,
                    expires_at=expires_at,
                )
                .returning(auth_sessions.c.user_id, auth_sessions.c.generation)
            )
        ).one_or_none()
        return (row.user_id, row.generation) if row else None

    async def end(self, session_id: UUID, reason: str, now: datetime) -> int | None:
        """End a live session; returns the stream version of the ending, None if already over."""
        row = (
            await self._connection.execute(
                update(auth_sessions)
                .where(auth_sessions.c.id == session_id, auth_sessions.c.ended_at.is_(None))
                .values(ended_at=now, end_reason=reason, generation=auth_sessions.c.generation + 1)
                .returning(auth_sessions.c.generation)
            )
        ).one_or_none()
        return row.generation if row else None

    async def ended_since(self, since: datetime) -> dict[UUID, datetime]:
        """Sessions ended after `since`, with when: the revocations still worth caching."""
        rows = await self._connection.execute(
            select(auth_sessions.c.id, auth_sessions.c.ended_at).where(
                auth_sessions.c.ended_at > since
            )
        )
        return {row.id: row.ended_at for row in rows}

    async def has_ended(self, session_id: UUID) -> bool:
        ended_at = await self._connection.scalar(
            select(auth_sessions.c.ended_at).where(auth_sessions.c.id == session_id)
        )
        return ended_at is not None
