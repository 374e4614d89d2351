"""The probes a load balancer and an orchestrator ask: alive (`/health`) is not the same as ready
(`/health/ready`: database and Redis reachable, schema current, every worker serving)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from ticketflow import serving_workers
from ticketflow.api.app import create_app
from ticketflow.config import Settings

from ..conftest import FAST_PASSWORDS, settings_for
from ..e2e.servers import free_port


@asynccontextmanager
async def app_on(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, passwords=FAST_PASSWORDS)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_ready_when_database_and_redis_answer(postgresql_url: str, redis_url: str) -> None:
    async with app_on(settings_for(postgresql_url, redis_url=redis_url)) as client:
        answer = await client.get("/health/ready")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }


async def test_not_ready_until_every_worker_of_the_server_started(postgresql_url: str) -> None:
    """Under `ticketflow serve --workers 2`, one worker listening of two: not ready yet (every
    connection opened now would go to that one). A worker signs in once it listens (granian's
    socket, which this test has none of: tests/e2e/test_serving_workers_e2e.py), so here this
    process signs in as worker 1 itself."""
    with serving_workers.counted(2):
        async with app_on(settings_for(postgresql_url)) as client:  # this process: worker 1
            serving_workers.signed_in()
            waiting = await client.get("/health/ready")
            other_worker = Path(os.environ[serving_workers.DIRECTORY_VARIABLE]) / str(os.getppid())
            other_worker.touch()
            both = await client.get("/health/ready")
    assert waiting.status_code == 503
    assert waiting.json()["checks"]["workers"] == "1 of 2 workers serving"
    assert both.status_code == 200, both.text


async def test_not_ready_but_alive_while_postgresql_is_down() -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/ticketflow"
    async with app_on(settings_for(nobody)) as client:
        alive = await client.get("/health")
        ready = await client.get("/health/ready")
    assert alive.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")


async def test_not_ready_while_redis_is_down(postgresql_url: str) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with app_on(settings_for(postgresql_url, redis_url=nobody)) as client:
        ready = await client.get("/health/ready")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("unreachable")
