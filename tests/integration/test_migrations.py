"""The migrations build exactly the schema the code declares, and step back and forth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url

from tests.conftest import PG_SERVER_URL, _on_server
from ticketflow.adapters import migrations
from ticketflow.adapters.db import create_engine
from ticketflow.adapters.tables import metadata
from ticketflow.config import Settings


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own: this test moves the schema up and down."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"ticketflow_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(_on_server(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _differences(url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async def run() -> list[object]:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_head_matches_the_declared_tables_and_the_newest_step_goes_down_and_up(
    fresh_url: str,
) -> None:
    settings = Settings(database_url=fresh_url)
    migrations.upgrade(settings)
    assert _differences(fresh_url) == []
    config = migrations.alembic_config(settings)
    command.downgrade(config, "-1")
    assert _differences(fresh_url) != []  # the step changed something, and undid it
    migrations.upgrade(settings)
    assert _differences(fresh_url) == []
