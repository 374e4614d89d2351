"""The app as `ticketflow serve` builds it: once started, its garbage collector is settled for
serving and collects less often while thousands of requests are in flight (gc_tuning.py). Run
in a process of its own, since it changes the collector of the process it starts in."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import asyncio, gc
from ticketflow.api.app import create_served_app
from ticketflow.gc_tuning import BUSY, CALM

async def main():
    app = create_served_app()
    frozen = gc.get_freeze_count()
    async with app.router.lifespan_context(app):
        in_flight = app.state.in_flight
        seen = [gc.get_freeze_count() > frozen, gc.get_threshold() == CALM]
        for _ in range(65):  # one more than TICKETFLOW_BUSY_REQUESTS_IN_FLIGHT
            in_flight.started()
        seen.append(gc.get_threshold() == BUSY)
        in_flight.finished()
        seen.append(gc.get_threshold() == CALM)
        print(seen)

asyncio.run(main())
"""


def test_the_served_app_settles_its_collector_once_started(sqlite_url: str) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKETFLOW_")}
    env.update(
        TICKETFLOW_DATABASE_URL=sqlite_url,
        TICKETFLOW_RUN_SWEEPER="false",
        TICKETFLOW_RUN_CONSUMERS="false",
        TICKETFLOW_RUN_RELAY="false",
        TICKETFLOW_RUN_RECONCILER="false",
        TICKETFLOW_RUN_WEBHOOK_DELIVERIES="false",
        TICKETFLOW_BUSY_REQUESTS_IN_FLIGHT="64",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # frozen after start-up; CPython's thresholds while calm, the busy ones only while busy
    assert done.stdout.splitlines()[-1] == "[True, True, True, True]"
