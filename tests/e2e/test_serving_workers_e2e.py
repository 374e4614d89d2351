"""`ticketflow serve --workers 2`: once /health/ready answers 200, both workers accept, so the
connections a load balancer or a crowd opens right then are spread over both (each worker has
a listening socket of its own and binds it after the app's startup: serving_workers.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ticketflow import serving_workers
from ticketflow.config import Settings
from ticketflow.serving_workers import ESTABLISHED, LISTEN

from .servers import server_env, start_server

CONNECTIONS = 100


async def test_connections_opened_as_soon_as_ready_reach_every_worker(
    e2e_settings: Settings, tmp_path: Path
) -> None:
    env = server_env(e2e_settings.database_url, e2e_settings.jwt_secret)
    server = await start_server(env, tmp_path, workers=2)
    try:
        await server.wait_ready()
        opened = [
            await asyncio.open_connection("127.0.0.1", server.port) for _ in range(CONNECTIONS)
        ]
        for reader, writer in opened:  # answered: accepted by some worker
            writer.write(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        per_worker = [
            _sockets(pid).count((server.port, ESTABLISHED))
            for pid in _workers(server.process.pid, server.port)
        ]
        for _, writer in opened:
            writer.close()
    finally:
        await server.stop()
    assert sum(per_worker) == CONNECTIONS
    # Spread by the kernel's hash of each connection: all on one of two has odds of 2 ** -99.
    assert len(per_worker) == 2 and min(per_worker) > 0, per_worker


def _workers(server_pid: int, port: int) -> list[int]:
    """The worker processes of `ticketflow serve`: its children listening on `port`."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children if (port, LISTEN) in _sockets(int(pid))]


def _sockets(pid: int) -> list[tuple[int, str]]:
    sockets = serving_workers.tcp_sockets(pid)
    assert sockets is not None, "Linux says which sockets a process has"
    return sockets
