"""serving_workers.py: an instance of N workers is ready once all N signed in; a worker that
signed out, or was killed without signing out, counts no more; outside `ticketflow serve`
nothing is counted."""

from __future__ import annotations

import os
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
