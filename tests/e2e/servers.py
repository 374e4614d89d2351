"""Real processes for end-to-end tests (`ticketflow serve` and `ticketflow payment-provider`):
start, wait until ready, stop or kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

READY_TIMEOUT_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0
# The provider's injected hangs hold its graceful stop as long as they last; its ledger commits
# before it hangs, so there is nothing to wait for.
PROVIDER_STOP_GRACE_SECONDS = 1.0
# The `ticketflow` script of the environment running the tests (uv's .venv/bin).
TICKETFLOW = Path(sys.executable).with_name("ticketflow")


def server_env(database_url: str, jwt_secret: str, **settings: object) -> dict[str, str]:
    """The environment of a server: ours, minus any TICKETFLOW_* of the caller's shell.

    Defaults suit many servers on one small box: no background jobs (sweeper, reconciler), few
    connections, no rate limits. `settings` (Settings field names, e.g. run_sweeper=True)
    override them.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKETFLOW_")}
    chosen: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": jwt_secret,
        "run_sweeper": "false",
        "run_reconciler": "false",
        "db_pool_size": 5,
        "db_max_overflow": 0,
        "rate_limits": "off",
        **settings,
    }
    env.update({f"TICKETFLOW_{name.upper()}": str(value) for name, value in chosen.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def provider_env() -> dict[str, str]:
    """The provider's environment: ours minus any TICKETFLOW_* (faults, ledger) of the shell."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKETFLOW_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    [port] = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each probe stays bound until all are picked (one by one,
    the kernel may hand the same just-released port out twice)."""
    with contextlib.ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


@dataclass
class ServerProcess:
    """One `ticketflow serve` or `payment-provider` (granian main + worker), alone in its own
    process group; ready when `ready_path` answers 200."""

    port: int
    process: asyncio.subprocess.Process
    log_path: Path
    ready_path: str = "/health/ready"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, within_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll GET `ready_path` until 200; fail if the process dies or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_seconds
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"server on port {self.port} exited with {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.ready_path)).status_code == 200:
                        return
                if loop.time() > deadline:
                    raise TimeoutError(
                        f"server on port {self.port} not ready after {within_seconds}s:\n"
                        + self.log_tail()
                    )
                await asyncio.sleep(0.05)  # poll interval, not synchronization

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Graceful: SIGTERM, then SIGKILL to the whole group if it lingers."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace_seconds)
        await self.kill()

    async def kill(self) -> None:
        """A crash: SIGKILL the main process and its workers at once (no orphan keeps the port)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()


async def _spawn(
    arguments: list[str], env: Mapping[str, str], log_path: Path, port: int, ready_path: str
) -> ServerProcess:
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(TICKETFLOW),
            *arguments,
            "--port",
            str(port),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the workers too
        )
    return ServerProcess(port, process, log_path, ready_path)


async def start_server(
    env: Mapping[str, str], log_dir: Path, port: int | None = None, workers: int = 1
) -> ServerProcess:
    """Start `ticketflow serve --workers N` on `port` (a free one by default); not yet ready."""
    port = port or free_port()
    arguments = ["serve", "--workers", str(workers)]
    return await _spawn(arguments, env, log_dir / f"server-{port}.log", port, "/health/ready")


async def start_provider(
    ledger: Path,
    log_dir: Path,
    port: int | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> ServerProcess:
    """Start `ticketflow payment-provider` with its ledger at `ledger`; not yet ready."""
    port = port or free_port()
    arguments = ["payment-provider", "--ledger", str(ledger)]
    if webhook_url is not None:
        arguments += ["--webhook-url", webhook_url]
    if webhook_secret is not None:
        arguments += ["--webhook-secret", webhook_secret]
    log_path = log_dir / f"provider-{port}.log"
    return await _spawn(arguments, provider_env(), log_path, port, "/health")


@asynccontextmanager
async def running_provider(
    ledger: Path,
    log_dir: Path,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> AsyncIterator[ServerProcess]:
    """A ready sandbox provider; stopped on exit, whatever happened inside."""
    provider = await start_provider(
        ledger, log_dir, webhook_url=webhook_url, webhook_secret=webhook_secret
    )
    try:
        await provider.wait_ready()
        yield provider
    finally:
        await provider.stop(PROVIDER_STOP_GRACE_SECONDS)


@asynccontextmanager
async def running_servers(
    count: int, env: Mapping[str, str], log_dir: Path
) -> AsyncIterator[list[ServerProcess]]:
    """`count` ready servers; all stopped on exit, whatever happened inside."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(await start_server(env, log_dir))
        failures = await asyncio.gather(
            *(server.wait_ready() for server in servers), return_exceptions=True
        )
        for failure in failures:
            if isinstance(failure, BaseException):
                raise failure
        yield servers
    finally:
        await asyncio.gather(*(server.stop() for server in servers))
