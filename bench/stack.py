"""The bench's own stack: a throwaway PostgreSQL database, a throwaway redis-server, the sandbox
payment provider and `ticketflow serve`, each removed on the way out whatever happened (Ctrl-C
included)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.engine import make_url

from tests.e2e.servers import TICKETFLOW, ServerProcess, free_port, running_provider

READY_TIMEOUT = 60.0
# Signs the provider's webhooks; the app is given the same (TICKETFLOW_PAYMENT_WEBHOOK_SECRET).
WEBHOOK_SECRET = "ticketflow-bench-webhook-secret"


async def _on_server(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _ticketflow(*arguments: str, env: Mapping[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        str(TICKETFLOW),
        *arguments,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"ticketflow {' '.join(arguments)} failed:\n{output.decode()}")


def clean_env(**settings: object) -> dict[str, str]:
    """Our environment minus the caller's TICKETFLOW_* settings, plus `settings` (field names)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKETFLOW_")}
    env.update({f"TICKETFLOW_{name.upper()}": str(value) for name, value in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str) -> AsyncIterator[str]:
    """`bench_<random>` on the server at `server_url`, migrated by `ticketflow migrate`."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    await _on_server(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await _ticketflow("migrate", env=clean_env(database_url=url))
        yield url
    finally:
        await _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def vacuum(database_url: str) -> None:
    """Settle the freshly seeded database, so autovacuum's first pass over thousands of new rows
    does not land inside a measurement (analyzing is bench/autovacuum.py's)."""
    await _on_server(database_url, "VACUUM")


@dataclass
class RedisServer:
    port: int
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def command_calls(self) -> dict[str, int]:
        """Calls per command since start (INFO commandstats): proof of what the app did."""
        client = Redis.from_url(self.url)
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


@contextlib.asynccontextmanager
async def throwaway_redis(directory: Path) -> AsyncIterator[RedisServer]:
    """Our own redis-server on a free port (never the shared one on 6379), nothing on disk."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        *("--dir", str(directory), "--maxclients", "20000"),
        stdout=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    server = RedisServer(port, process)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            with contextlib.suppress(OSError, RedisConnectionError):
                if await server.command_calls() is not None:
                    break
            if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start")
            await asyncio.sleep(0.05)  # poll interval while it starts
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def _server_command(server: str, workers: int, port: int) -> list[str]:
    """`ticketflow serve` (granian), or the same app under uvicorn (uvloop, httptools) with the
    same workers and backlog, for the stack comparison in bench/README.md."""
    if server == "uvicorn":
        return [
            str(TICKETFLOW.with_name("uvicorn")),
            "ticketflow.api.app:create_served_app",
            "--factory",
            *("--port", str(port), "--workers", str(workers), "--backlog", "16384"),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
        ]
    return [str(TICKETFLOW), "serve", "--workers", str(workers), "--port", str(port)]


@contextlib.asynccontextmanager
async def sandbox_provider(directory: Path, app_port: int) -> AsyncIterator[ServerProcess]:
    """`ticketflow payment-provider` on a free port, its ledger in `directory`, sending signed
    webhooks to the app that will listen on `app_port` (as `make run` wires them)."""
    async with running_provider(
        directory / "payment-provider.db",
        directory,
        webhook_url=f"http://127.0.0.1:{app_port}/api/v1/payments/webhook",
        webhook_secret=WEBHOOK_SECRET,
    ) as provider:
        yield provider


@contextlib.asynccontextmanager
async def running_app(
    env: Mapping[str, str],
    workers: int,
    log_dir: Path,
    server: str = "granian",
    port: int | None = None,
) -> AsyncIterator[ServerProcess]:
    """The app with N workers on `port` (default: a free one), ready (GET /health/ready is 200)."""
    port = port or free_port()
    log_path = log_dir / f"app-{port}.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *_server_command(server, workers, port),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: its CPU is counted, Ctrl-C spares it
        )
    app = ServerProcess(port, process, log_path)
    try:
        await app.wait_ready(READY_TIMEOUT)
        yield app
    finally:
        await app.stop()
