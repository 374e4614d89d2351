"""Users, their password resets, and their login sessions (refresh-token families)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.adapters.tables import auth_sessions, password_resets, users
from ticketflow.domain.errors import Conflict
from ticketflow.domain.model import Role, User

_USER_COLUMNS = (users.c.id, users.c.email, users.c.role, users.c.version, users.c.disabled_at)


def _user(row: Row[*tuple[Any, ...]]) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        version=row.version,
        disabled_at=row.disabled_at,
    )


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

    async def get(self, user_id: UUID, *, hold: bool = False) -> User | None:
        """`hold`: no other transaction may change the user until this one ends (FOR SHARE; on
        SQLite every write transaction is alone anyway). A sign-in holds the user it starts a
        session for, so a change that ends every session can't miss the new one."""
        query = select(*_USER_COLUMNS).where(users.c.id == user_id)
        if hold:
            query = query.with_for_update(read=True)
        row = (await self._connection.execute(query)).one_or_none()
        return _user(row) if row else None

    async def by_email(self, email: str) -> User | None:
        row = (
            await self._connection.execute(select(*_USER_COLUMNS).where(users.c.email == email))
        ).one_or_none()
        return _user(row) if row else None

    async def credentials(self, email: str) -> tuple[User, str] | None:
        return await self._credentials(users.c.email == email)

    async def credentials_of(self, user_id: UUID) -> tuple[User, str] | None:
        return await self._credentials(users.c.id == user_id)

    async def _credentials(self, where: ColumnElement[bool]) -> tuple[User, str] | None:
        query = select(*_USER_COLUMNS, users.c.password_hash).where(where)
        row = (await self._connection.execute(query)).one_or_none()
        return (_user(row), row.password_hash) if row else None

    async def email_taken(self, email: str) -> bool:
        found = await self._connection.scalar(select(users.c.id).where(users.c.email == email))
        return found is not None

    async def save(self, user: User, read_version: int, password_hash: str | None = None) -> None:
        """Write the user's changes (and a new password hash) unless someone else changed the
        user since it was read at `read_version`."""
        values: dict[str, Any] = {
            "role": user.role.value,
            "disabled_at": user.disabled_at,
            "version": user.version,
        }
        if password_hash is not None:
            values["password_hash"] = password_hash
        result = await self._connection.execute(
            update(users)
            .where(users.c.id == user.id, users.c.version == read_version)
            .values(values)
        )
        if result.rowcount != 1:
            raise Conflict("The user was changed at the same time; try again.")

    async def add_password_reset(
        self, reset_id: UUID, user_id: UUID, expires_at: datetime, now: datetime
    ) -> None:
        await self._connection.execute(
            insert(password_resets).values(
                id=reset_id, user_id=user_id, expires_at=expires_at, created_at=now
            )
        )

    async def open_password_reset(self, reset_id: UUID, now: datetime) -> UUID | None:
        """The user of the reset if it is still unused and unexpired (a look, not a claim)."""
        found: UUID | None = await self._connection.scalar(
            select(password_resets.c.user_id).where(
                self._open(now), password_resets.c.id == reset_id
            )
        )
        return found

    async def spend_password_reset(self, reset_id: UUID, now: datetime) -> UUID | None:
        """Mark the reset used, if it still can be: its user's id, or None. Conditional, so of
        two confirmations racing with one token exactly one gets it."""
        user_id: UUID | None = await self._connection.scalar(
            update(password_resets)
            .where(self._open(now), password_resets.c.id == reset_id)
            .values(used_at=now)
            .returning(password_resets.c.user_id)
        )
        return user_id

    async def spend_password_resets_of(self, user_id: UUID, now: datetime) -> list[UUID]:
        """Spend every open reset of the user (its password just changed); their ids."""
        rows = await self._connection.execute(
            update(password_resets)
            .where(self._open(now), password_resets.c.user_id == user_id)
            .values(used_at=now)
            .returning(password_resets.c.id)
        )
        return list(rows.scalars())

    @staticmethod
    def _open(now: datetime) -> ColumnElement[bool]:
        return password_resets.c.used_at.is_(None) & (password_resets.c.expires_at > now)


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

    async def end_all_of(
        self, user_id: UUID, reason: str, now: datetime, except_session: UUID | None = None
    ) -> list[tuple[UUID, int]]:
        """End every live session of the user but `except_session`: (session id, stream version
        of the ending) of each. Expired ones are left be: their access tokens expired before."""
        live = (
            (auth_sessions.c.user_id == user_id)
            & auth_sessions.c.ended_at.is_(None)
            & (auth_sessions.c.expires_at > now)
        )
        if except_session is not None:
            live &= auth_sessions.c.id != except_session
        rows = await self._connection.execute(
            update(auth_sessions)
            .where(live)
            .values(ended_at=now, end_reason=reason, generation=auth_sessions.c.generation + 1)
            .returning(auth_sessions.c.id, auth_sessions.c.generation)
        )
        return [(row.id, row.generation) for row in rows]

    async def ended_since(self, since: datetime) -> dict[UUID, datetime]:
        """Sessions ended after `since`, with when: the revocations still worth caching."""
        rows = await self._connection.execute(
            select(auth_sessions.c.id, auth_sessions.c.ended_at).where(
                auth_sessions.c.ended_at > since
            )
        )
        return {row.id: row.ended_at for row in rows}

    async def ended_among(self, session_ids: list[UUID]) -> set[UUID]:
        """Which of these sessions have ended (by primary key: no scan)."""
        rows = await self._connection.scalars(
            select(auth_sessions.c.id).where(
                auth_sessions.c.id.in_(session_ids), auth_sessions.c.ended_at.is_not(None)
            )
        )
        return set(rows)

    async def has_ended(self, session_id: UUID) -> bool:
        ended_at = await self._connection.scalar(
            select(auth_sessions.c.ended_at).where(auth_sessions.c.id == session_id)
        )
        return ended_at is not None
