"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ticketflow import serving_workers
from ticketflow.adapters.migrations import current_revision, head_revision
from ticketflow.services.messagebus import MessageBus

router = APIRouter(tags=["health"])


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Database (and Redis, if configured) reachable, schema current, every worker serving",
    responses={503: {"description": "Not ready"}},
)
async def ready(request: Request) -> JSONResponse:
    bus: MessageBus = request.app.state.bus
    checks: dict[str, Any] = {}
    try:
        async with bus.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await current_revision(connection)
        checks["database"] = "ok"
        head = head_revision()
        checks["migrations"] = "ok" if revision == head else f"at {revision}, head is {head}"
    except Exception as error:  # any failure to reach the database means "not ready"
        checks["database"] = f"unreachable: {type(error).__name__}"
    if (missing := serving_workers.not_serving()) is not None:  # see serving_workers.py
        checks["workers"] = missing
    if bus.deps.redis is not None:
        try:
            await bus.deps.redis.ping()
            checks["redis"] = "ok"
        except Exception as error:  # Redis down: this instance can't serve its fast paths
            checks["redis"] = f"unreachable: {type(error).__name__}"
    healthy = "migrations" in checks and all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )
