"""One benchmark run: start the stack, seed, run the phases, check, report, tear down."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy.engine import make_url

from bench import report
from bench.autovacuum import analyze_grown, analyzing
from bench.config import BenchConfig
from bench.context import AppHandle, Context, PhaseResult
from bench.cpu import sample_cpu, share_between
from bench.machine import machine_info
from bench.phases import PHASES
from bench.pool import LoadGenerator
from bench.seed import access_tokens, accounts
from bench.stack import (
    WEBHOOK_SECRET,
    clean_env,
    sandbox_provider,
    throwaway_database,
    throwaway_redis,
    vacuum,
)
from bench.targets import targets
from tests.e2e.servers import free_port
from ticketflow.bootstrap import build_bus
from ticketflow.config import Settings
from ticketflow.domain.model import Role
from ticketflow.services.messagebus import MessageBus

JWT_SECRET = "ticketflow-bench-secret-not-for-anything-else"
# Long enough that no token expires and no hold is swept during a run: the checks count holds.
TOKEN_TTL_SECONDS = 6 * 3600
HOLD_TTL_SECONDS = 6 * 3600
BACKGROUND_SAMPLE_SECONDS = 2.0
BACKGROUND_WARNING_CORES = 0.25


def app_settings(database_url: str, redis_url: str) -> dict[str, object]:
    """What the benchmark sets for the app; everything else is the app's own default."""
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": JWT_SECRET,
        "access_token_ttl_seconds": TOKEN_TTL_SECONDS,
        "hold_ttl_seconds": HOLD_TTL_SECONDS,
        "rate_limits": "off",
        "run_reconciler": "false",
    }


@contextlib.asynccontextmanager
async def bench_bus(settings: dict[str, object]) -> AsyncIterator[MessageBus]:
    bus = build_bus(Settings(**settings, run_sweeper=False))  # type: ignore[arg-type]
    try:
        yield bus
    finally:
        await bus.deps.payments.aclose()
        if bus.deps.redis is not None:
            await bus.deps.redis.aclose()
        await bus.engine.dispose()


async def background_cores(console: Console) -> float:
    """Cores busy while the stack sits idle: anything else on the box makes every figure noisy."""
    before = sample_cpu(None, [])
    await asyncio.sleep(BACKGROUND_SAMPLE_SECONDS)
    busy = share_between(before, sample_cpu(None, [])).machine
    if busy > BACKGROUND_WARNING_CORES:
        console.print(
            f"[yellow]warning[/yellow]: {busy:.2f} cores were busy before the run started "
            "(something else is running here): expect noisy figures"
        )
    return busy


async def run(config: BenchConfig, console: Console) -> int:
    """The exit status: 0 if every phase measured and every check held."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # torn down as on Ctrl-C
    try:
        return await _run(config, console)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run(config: BenchConfig, console: Console) -> int:
    started = time.monotonic()
    results: dict[str, PhaseResult] = {}
    database = ""
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-bench-")))
        console.print(f"[bold]TicketFlow benchmark[/bold]: phases {', '.join(config.phases)}")
        database_url = await stack.enter_async_context(throwaway_database(config.postgres_url))
        database = str(make_url(database_url).database)
        redis = await stack.enter_async_context(throwaway_redis(workdir))
        # Started for every run, whatever the phases: it idles at no cost, and the app is then
        # always set up as deployed, paying through a provider that calls it back (signed).
        app_port = free_port()
        provider = await stack.enter_async_context(sandbox_provider(workdir, app_port))
        settings = {
            **app_settings(database_url, redis.url),
            "payment_provider_url": provider.base_url,
            "payment_webhook_secret": WEBHOOK_SECRET,
        }
        bus = await stack.enter_async_context(bench_bus(settings))
        machine = await machine_info(bus.engine)
        with console.status(f"seeding {config.buyers:,} buyers and their tokens"):
            (organizer,) = await accounts(bus, 1, Role.MANAGER)
            tokens = access_tokens(bus, await accounts(bus, config.buyers))
            await vacuum(database_url)
            async with bus.engine.connect() as connection:
                await analyze_grown(connection)  # what was seeded; never an empty table
        await stack.enter_async_context(analyzing(bus.engine))
        app = AppHandle(
            lambda engine, own: clean_env(
                **{**settings, **config.extra_app_env, "booking_engine": engine, **own}
            ),
            config.workers,
            workdir,
            config.server,
            port=app_port,
        )
        stack.push_async_callback(app.stop)
        with console.status(f"starting the app ({config.workers} workers)"):
            await app.start(config.engine)
        load = LoadGenerator(config.clients, app.process_group, lambda: provider.process.pid)
        stack.callback(load.close)
        background = await background_cores(console)
        context = Context(
            config,
            console,
            bus,
            organizer,
            tokens,
            redis,
            app,
            load,
            provider=provider,
            results=results,  # filled as the phases finish: a phase may read those before it
        )
        for name in config.phases:
            try:
                result = await PHASES[name](context)
            except Exception as error:  # a phase that could not measure says why, and we go on
                result = PhaseResult(name, summary={}, outcomes={}, problems=[repr(error)])
                if app.server is not None:
                    result.notes.append("app log tail:\n" + app.server.log_tail(15))
            results[name] = result
            report.show_phase(console, result)
    found = targets(results)
    document: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine, "busy_cores_before_run": round(background, 2)},
        "database": database,  # the throwaway one, dropped by now
        "config": config.describe(),
        "phases": [result.as_dict() for result in results.values()],
        "targets": [target.as_dict() for target in found],
    }
    console.print(report.targets_table(found))
    for path in report.write_results(config.results_dir, document):
        console.print(f"wrote {path}")
    failed = [name for name, result in results.items() if not result.ok]
    if failed:
        console.print(f"[bold red]FAILED[/bold red]: {', '.join(failed)} (see above)")
        return 1
    console.print("[green]every phase measured, every invariant check held[/green]")
    return 0
