"""serving_workers.py: an instance of N workers is ready once all N signed in, each once it
listens for connections; a worker that signed out, or was killed without signing out, counts no
more; outside `ticketflow serve` nothing is counted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from ticketflow import serving_workers


def test_ready_only_once_every_worker_signed_in() -> None:
    with serving_workers.counted(2):
        directory = Path(os.environ[serving_workers.DIRECTORY_VARIABLE])
        assert serving_workers.not_serving() == "0 of 2 workers serving"
        serving_workers.signed_in()  # this process, as one worker
        assert serving_workers.not_serving() == "1 of 2 workers serving"
        (directory / str(os.getppid())).touch()  # a second process, alive
        assert serving_workers.not_serving() is None
        serving_workers.signed_out()
        assert serving_workers.not_serving() == "1 of 2 workers serving"
    assert not directory.exists()  # the server's directory goes with it
    assert serving_workers.DIRECTORY_VARIABLE not in os.environ


def test_a_worker_killed_without_signing_out_counts_no_more() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with serving_workers.counted(1):
        directory = Path(os.environ[serving_workers.DIRECTORY_VARIABLE])
        (directory / gone).touch()
        assert serving_workers.not_serving() == "0 of 1 workers serving"
        serving_workers.signed_in()
        assert serving_workers.not_serving() is None


def test_a_process_not_started_by_serve_counts_nothing() -> None:
    assert serving_workers.DIRECTORY_VARIABLE not in os.environ
    serving_workers.signed_in()  # no directory: nothing to sign, nothing fails
    assert serving_workers.not_serving() is None
    serving_workers.signed_out()


def test_listening_ports_are_the_ports_this_process_accepts_on() -> None:
    with socket.socket() as probe, socket.create_connection(("127.0.0.1", 5432)):
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        assert port not in _listening()  # bound, not listening yet
        probe.listen()
        assert port in _listening()
        assert 5432 not in _listening()  # connected to another process's port: not ours
    assert port not in _listening()


def test_a_worker_signs_in_once_it_listens_not_when_its_startup_is_done() -> None:
    # In a process of its own: one with no other listening socket, as a fresh worker.
    script = """
import asyncio, socket
from ticketflow import serving_workers

async def main():
    signing_in = asyncio.create_task(serving_workers.sign_in_once_listening(check_every=0.005))
    try:
        await asyncio.wait_for(asyncio.shield(signing_in), 0.2)
    except TimeoutError:
        print(serving_workers.not_serving())
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        await signing_in
        print(serving_workers.not_serving())

asyncio.run(main())
"""
    with serving_workers.counted(1):
        ran = subprocess.run(
            [sys.executable, "-c", script], check=True, capture_output=True, text=True
        )
    assert ran.stdout.split("\n") == ["0 of 1 workers serving", "None", ""]


def _listening() -> set[int]:
    ports = serving_workers.listening_ports()
    assert ports is not None, "Linux says which ports a process listens on"
    return ports
