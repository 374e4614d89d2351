"""Alembic, driven from code: `ticketflow migrate`, tests and the readiness check use it."""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketflow.config import Settings


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", "ticketflow:migrations")
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the schema to `revision` (blocking: call from a thread inside an event loop)."""
    command.upgrade(alembic_config(settings), revision)


@cache
def head_revision() -> str | None:
    """The newest revision this code ships; read from the scripts once per process (readiness
    asks on every probe)."""
    return ScriptDirectory.from_config(alembic_config(Settings())).get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    try:
        revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
    return str(revision) if revision else None
