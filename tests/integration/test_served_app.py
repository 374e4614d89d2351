"""The app as `ticketflow serve` builds it: once started, its garbage collector is settled for
thousands of requests in flight (src/ticketflow/gc_tuning.py). Run in a process of its own, since
it changes the collector of the process it starts in."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import asyncio, gc
from ticketflow.api.app import create_served_app
from ticketflow.gc_tuning import THRESHOLDS

async def main():
    app = create_served_app()
    frozen, before = gc.get_freeze_count(), gc.get_threshold()
    async with app.router.lifespan_context(app):
        print(before, gc.get_threshold() == THRESHOLDS, gc.get_freeze_count() > frozen)

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
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "(700, 10, 10) True True"
