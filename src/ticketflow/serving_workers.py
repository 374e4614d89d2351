"""How many of a server's worker processes serve, for its readiness (GET /health/ready).

Each of granian's workers listens on a socket of its own (SO_REUSEPORT, on Linux), and the
kernel spreads new connections over the sockets that exist when they arrive. A worker binds its
socket only after the app's startup: a load balancer or a client that opens its keep-alive
connections as soon as the first worker answers puts every one of them on that worker, and the
others stay idle as long as those connections live (seen in the benchmark's marathon: one worker
at 93% of a core with 1,031 connections, the other at 21% with 6). So `ticketflow serve` counts
its workers, each worker signs in once it accepts connections (a file named after its pid in a
directory of the server's own), and the instance is ready only when all of them have. Signing
in at the end of the app's startup was not enough: the socket comes after it, and 200
connections opened right after readiness all went to one worker, six times out of six.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DIRECTORY_VARIABLE = "TICKETFLOW_SERVING_WORKERS_DIR"
COUNT_VARIABLE = "TICKETFLOW_SERVING_WORKERS"


@contextmanager
def counted(workers: int) -> Iterator[None]:
    """Around a server of `workers` processes (spawned ones inherit the environment)."""
    directory = tempfile.mkdtemp(prefix="ticketflow-workers-")
    os.environ[DIRECTORY_VARIABLE], os.environ[COUNT_VARIABLE] = directory, str(workers)
    try:
        yield
    finally:
        del os.environ[DIRECTORY_VARIABLE], os.environ[COUNT_VARIABLE]
        shutil.rmtree(directory, ignore_errors=True)


def signed_in() -> None:
    """This worker serves from now on (it accepts connections)."""
    if (mark := _own_mark()) is not None:
        mark.touch()


async def sign_in_once_listening(check_every: float = 0.01) -> None:
    """Sign in as soon as this worker listens for connections (module docstring); at once
    where that can't be seen (no /proc), and not at all outside `ticketflow serve`."""
    if _own_mark() is None:
        return
    # Polled: granian's runtime binds the socket and signals nothing an event could wait on.
    while listening_ports() == set():  # noqa: ASYNC110
        await asyncio.sleep(check_every)
    signed_in()


def listening_ports() -> set[int] | None:
    """The TCP ports this process listens on; None where the system does not say (no /proc)."""
    sockets = tcp_sockets()
    return None if sockets is None else {port for port, state in sockets if state == LISTEN}


def tcp_sockets(pid: int | str = "self") -> list[tuple[int, str]] | None:
    """A process's own TCP sockets as (local port, state: /proc/net/tcp's code, e.g. LISTEN),
    from /proc; None where the system does not say."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        with suppress(OSError):  # closed since it was listed (the listing's own, for one)
            if (link := os.readlink(f"/proc/{pid}/fd/{fd}")).startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    found = []
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        with suppress(OSError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    found.append((int(fields[1].rpartition(":")[2], 16), fields[3]))
    return found


LISTEN, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def signed_out() -> None:
    """This worker is stopping."""
    if (mark := _own_mark()) is not None:
        mark.unlink(missing_ok=True)


def not_serving() -> str | None:
    """Why this instance is not ready yet ("1 of 2 workers serving"), or None: all serve (or
    the process was not started by `ticketflow serve`, which counts them)."""
    directory, expected = os.environ.get(DIRECTORY_VARIABLE), os.environ.get(COUNT_VARIABLE)
    if directory is None or expected is None:
        return None
    try:
        marks = list(Path(directory).iterdir())
    except FileNotFoundError:  # the server is stopping
        marks = []
    serving = sum(_alive(mark.name) for mark in marks)
    return None if serving >= int(expected) else f"{serving} of {expected} workers serving"


def _own_mark() -> Path | None:
    directory = os.environ.get(DIRECTORY_VARIABLE)
    return None if directory is None else Path(directory) / str(os.getpid())


def _alive(pid: str) -> bool:
    """A worker killed without signing out (SIGKILL) left its mark: it counts no more."""
    with suppress(ValueError, ProcessLookupError):
        os.kill(int(pid), 0)
        return True
    return False
