"""How many of a server's worker processes serve, for its readiness (GET /health/ready).

Granian's workers share one listening socket, and a worker still starting accepts nothing: a
load balancer or a client that opens its keep-alive connections as soon as the first worker
answers puts every one of them on that worker, and the others stay idle as long as those
connections live (seen in the benchmark's marathon: one worker at 85% of a core, the other at
10%). So `ticketflow serve` counts its workers, each worker signs in once its startup is done
(a file named after its pid in a directory of the server's own), and the instance is ready only
when all of them have.
"""

from __future__ import annotations

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
    """This worker serves from now on (once its startup is done)."""
    if (mark := _own_mark()) is not None:
        mark.touch()


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
