"""What every phase gets: the configuration, the running stack, the seeded buyers, the load
generator; and what every phase gives back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.config import BenchConfig
from bench.invariants import OK
from bench.pool import LoadGenerator, Run
from bench.seed import Sale, sale
from bench.stack import RedisServer, running_app
from bench.stats import Measurement
from bench.worker import Job
from tests.e2e.servers import ServerProcess, free_port
from ticketflow.domain.model import Actor
from ticketflow.services.messagebus import MessageBus


@dataclass
class AppHandle:
    """The app server now running; phases may restart it with another booking engine, or with
    settings of their own (the marathon's 10-minute holds)."""

    # (booking engine, settings of this start) -> the server's environment
    env_for: Callable[[str, Mapping[str, object]], dict[str, str]]
    workers: int
    log_dir: Path
    server_kind: str = "granian"
    # One port for every (re)start: the payment provider's webhooks are addressed to it.
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    engine: str = ""
    settings: dict[str, object] = field(default_factory=dict)  # this start's own settings
    _stack: AsyncExitStack | None = None

    @property
    def running(self) -> ServerProcess:
        assert self.server is not None, "the app is not running"
        return self.server

    def process_group(self) -> int | None:
        return self.server.process.pid if self.server else None  # started in its own session

    async def start(self, engine: str, **settings: object) -> None:
        await self.stop()
        stack = AsyncExitStack()
        self.server = await stack.enter_async_context(
            running_app(
                self.env_for(engine, settings),
                self.workers,
                self.log_dir,
                self.server_kind,
                self.port,
            )
        )
        self._stack, self.engine, self.settings = stack, engine, settings

    async def ensure(self, engine: str, **settings: object) -> None:
        """Running `engine` with exactly `settings` of its own: restarted unless it is."""
        if self.server is None or (self.engine, self.settings) != (engine, settings):
            await self.start(engine, **settings)

    async def stop(self) -> None:
        stack, self._stack, self.server = self._stack, None, None
        if stack is not None:
            await stack.aclose()


@dataclass
class Context:
    config: BenchConfig
    console: Console
    bus: MessageBus  # on the bench database, for seeding and checks
    organizer: Actor
    tokens: tuple[str, ...]
    redis: RedisServer
    app: AppHandle
    load: LoadGenerator
    event_ids: list[str] = field(default_factory=list)  # every event seeded so far
    provider: ServerProcess | None = None  # the sandbox payment provider the app pays through
    results: dict[str, PhaseResult] = field(default_factory=dict)  # the phases run so far

    async def new_sale(self, total: int, title: str, **options: Any) -> Sale:
        """A fresh event on sale with one ticket type of `total` tickets (options: seed.sale's)."""
        options.setdefault("max_tickets_per_buyer", self.config.buyer_cap)
        seeded = await sale(self.bus, self.organizer, total, title=title, **options)
        self.event_ids.append(seeded.event_id)
        return seeded

    def job(self, **fields: Any) -> Job:
        return Job(
            host="127.0.0.1", port=self.app.running.port, timeout=self.config.timeout, **fields
        )

    async def drive(self, job: Job, label: str, expected: int | None = None) -> Measurement:
        """Run `job` on the load generator with a live progress bar."""
        return Measurement.of(await self.drive_raw(job, label, expected))

    async def drive_raw(self, job: Job, label: str, expected: int | None = None) -> Run:
        """`drive`, giving what each process saw, unmerged (a journey merges its own)."""
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} answered"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(label, total=expected)

            def update(answered: int) -> None:
                progress.update(task, completed=answered)

            return await asyncio.to_thread(self.load.run, job, update)


@dataclass
class PhaseResult:
    name: str
    summary: dict[str, Any]  # the phase's headline figures (also what the ratios use)
    outcomes: dict[str, dict[str, Any]]  # outcome -> count and latency percentiles
    checks: dict[str, str] = field(default_factory=dict)  # check -> "ok" or what broke
    problems: list[str] = field(default_factory=list)  # why the phase itself did not measure
    notes: list[str] = field(default_factory=list)  # what a reader must know to trust it
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def broken_checks(self) -> dict[str, str]:
        return {name: verdict for name, verdict in self.checks.items() if verdict != OK}

    @property
    def ok(self) -> bool:
        return not self.problems and not self.broken_checks

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "summary": self.summary,
            "outcomes": self.outcomes,
            "checks": self.checks,
            "problems": self.problems,
            "notes": self.notes,
            "details": self.details,
        }
