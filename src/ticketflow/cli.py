"""The `ticketflow` command: serve, migrate, seed-demo, create-admin, sweep, reconcile, relay,
projections rebuild, payment-provider."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy.engine import make_url

from ticketflow import metrics, serving_workers
from ticketflow.adapters import migrations
from ticketflow.bootstrap import build_bus
from ticketflow.cli_failures import fail, failures_explained
from ticketflow.config import Settings
from ticketflow.domain import commands as cmd
from ticketflow.domain.model import Role
from ticketflow.logging_setup import configure_logging
from ticketflow.production_safety import example_secrets, production_problems
from ticketflow.services.demo import seed_demo
from ticketflow.services.messagebus import MessageBus
from ticketflow.services.outbox_relay import redis_relay
from ticketflow.services.projection_rebuild import rebuild_if_missing, rebuild_read_models
from ticketflow.services.sweeper import reconcile_once, run_periodically, sweep_once

app = typer.Typer(
    help="TicketFlow: event ticket booking that never oversells.", no_args_is_help=True
)
projections = typer.Typer(
    help="Read models (CQRS), kept by projections of the domain events.", no_args_is_help=True
)
app.add_typer(projections, name="projections")
console = Console()
T = TypeVar("T")


def _settings() -> Settings:
    with failures_explained():
        return Settings()


def _with_bus(work: Callable[[MessageBus], Awaitable[T]]) -> T:
    """Run `work` on a bus of its own; a failure the operator can fix ends the command clearly."""
    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)

    async def run() -> T:
        bus = build_bus(settings)
        try:
            return await work(bus)
        finally:
            await bus.engine.dispose()

    with failures_explained():
        return asyncio.run(run())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic) to the newest revision."""
    settings = _settings()
    with console.status("migrating the database schema"), failures_explained():
        migrations.upgrade(settings)
    console.print(f"schema is at revision {migrations.head_revision()}")
    with console.status("checking the read models"):
        replayed = _with_bus(lambda bus: rebuild_if_missing(bus.engine))
    if replayed is not None:  # the read models were just created on a database with events
        console.print(f"read models built from {replayed} events")


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Seed demo accounts and a published event, if the database has no users yet."""
    with console.status("seeding demo data"):
        accounts = _with_bus(seed_demo)
    if accounts is None:
        console.print("database already has users: demo data not seeded")
        return
    console.print("demo accounts (password [bold]" + accounts.password + "[/bold]):")
    for role, email in (
        ("admin", accounts.admin),
        ("organizer", accounts.organizer),
        ("buyer", accounts.buyer),
    ):
        console.print(f"  {role:<10} {email}")


@app.command("create-admin")
def create_admin(
    email: str,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
) -> None:
    """Create an admin account (password from a prompt, or --password-stdin)."""
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    user = _with_bus(lambda bus: bus.handle(cmd.RegisterUser(email, password, Role.ADMIN)))
    console.print(f"admin {user.email} created ({user.id})")


@app.command()
def sweep() -> None:
    """Release every expired hold now (the app also does this continuously)."""
    with console.status("releasing expired holds"):
        released = _with_bus(sweep_once)
    console.print(f"released {released} expired holds")


@app.command()
def reconcile() -> None:
    """Settle payments a crash left pending (asks the provider), finish requested refunds."""
    with console.status("settling pending payments with the provider"):
        settled = _with_bus(reconcile_once)
    console.print(f"settled {settled} payments")


@projections.command("rebuild")
def rebuild_projections(
    batch_size: Annotated[int, typer.Option(min=1, help="Events replayed per batch")] = 2000,
) -> None:
    """Empty every read model and replay the whole event store into it, in seq order.

    One transaction: writes that change a read model wait until it is done.
    """
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("replaying domain events", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        replayed = _with_bus(
            lambda bus: rebuild_read_models(bus.engine, batch_size=batch_size, progress=advance)
        )
    console.print(f"read models rebuilt from {replayed} events")


@app.command()
def relay(
    once: Annotated[bool, typer.Option(help="Publish what is pending, then exit")] = False,
) -> None:
    """Publish committed domain events to the Redis Stream (app instances do it too, unless
    TICKETFLOW_RUN_RELAY=false); any number may run, one publishes at a time."""
    if not _settings().redis_url:
        fail("the relay publishes to Redis: set TICKETFLOW_REDIS_URL")

    async def work(bus: MessageBus) -> int:
        outbox_relay = redis_relay(bus)
        if once:
            return await outbox_relay.relay_pending()
        interval = bus.deps.settings.relay_interval_seconds
        await run_periodically(
            "outbox relay", lambda _: outbox_relay.relay_pending(), bus, interval
        )
        return 0  # not reached: it runs until stopped

    console.print(f"published {_with_bus(work)} events")


def _loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (a name other than localhost: assume not)."""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per core)")] = 0,
    backlog: Annotated[
        int,
        typer.Option(
            help="Connections waiting to be accepted, and the most open connections one "
            "worker serves (granian's default 1024 leaves a flash sale's thousands of buyers "
            "waiting for a slot), so keep it large."
        ),
    ] = 16384,
) -> None:
    """Serve the API with granian (uvloop)."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    settings = _settings()
    if problems := production_problems(settings):  # refuse here, before any worker starts
        fail("refusing to start in production: " + "; ".join(problems))
    if not _loopback(host) and (examples := example_secrets(settings)):
        fail(
            f"refusing to serve on {host}, where others can reach it, with documented example "
            f"secrets ({', '.join(examples)}): anyone could mint tokens. Set "
            "TICKETFLOW_JWT_SECRET and TICKETFLOW_PAYMENT_WEBHOOK_SECRET (32+ random "
            "characters), or serve on 127.0.0.1."
        )
    console.print(f"TicketFlow on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    with failures_explained():  # a malformed URL fails here, before any worker starts
        # Deployments put the password in the URL (compose, the k8s Secret): keep it off logs.
        console.print(f"database: {make_url(settings.database_url).render_as_string()}")
    workers = workers or os.cpu_count() or 1
    with metrics.shared_by_workers(workers), serving_workers.counted(workers):
        server = Server(
            "ticketflow.api.app:create_served_app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
            backlog=backlog,
            # Granian's default lets each worker serve backlog/workers connections; but accepts
            # are not shared evenly (a worker still starting takes none), and 10,000 buyers
            # connecting at once then left hundreds waiting on a full worker's share.
            backpressure=backlog,
            # SIGTERM: the workers stop accepting and finish what is in flight; one still busy
            # after the grace period is killed, so the process always ends within it.
            workers_kill_timeout=settings.shutdown_grace_seconds,
        )
        # After granian set up its own logging: its lines then come through ours.
        configure_logging(settings.log_format, settings.log_level)
        server.serve()


@app.command("payment-provider")
def payment_provider(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8001,
    ledger: Annotated[
        str | None, typer.Option(help="SQLite ledger file (default: ./payment-provider.db)")
    ] = None,
    webhook_url: Annotated[str | None, typer.Option(help="POST signed events here")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="Secret that signs them")] = None,
) -> None:
    """Serve the sandbox payment provider: a fake card processor with its own ledger."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    from ticketflow.payment_provider.settings import ProviderSettings

    # The worker builds the app from the environment (granian imports the factory by name),
    # so options given here are handed over as the TICKETFLOW_PROVIDER_* variables.
    for name, value in (
        ("LEDGER", ledger),
        ("WEBHOOK_URL", webhook_url),
        ("WEBHOOK_SECRET", webhook_secret),
    ):
        if value is not None:
            os.environ[f"TICKETFLOW_PROVIDER_{name}"] = value
    try:
        settings = ProviderSettings()  # refuse here, not in the worker, when settings are wrong
    except ValueError as error:
        fail(str(error))
    console.print(f"sandbox payment provider on http://{host}:{port}  (docs: /docs)")
    console.print(f"ledger: {settings.ledger}  webhooks: {settings.webhook_url or 'off'}")
    Server(
        "ticketflow.payment_provider.app:create_provider_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        factory=True,
        log_access=False,
    ).serve()


# The benchmark lives beside the package in a checkout (bench/), not in the installed wheel.
REPO_ROOT = Path(__file__).resolve().parents[2]


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(context: typer.Context) -> None:
    """Run the flash-sale benchmark (bench/README.md) from a source checkout; every argument
    is passed on (`ticketflow bench -- --help` lists them), e.g. --phases burst --buyers 2000."""
    if not (REPO_ROOT / "bench" / "__main__.py").is_file():
        fail("the benchmark ships with the source checkout, not the package: run it there", 2)
    arguments = [argument for argument in context.args if argument != "--"]
    finished = subprocess.run([sys.executable, "-m", "bench", *arguments], cwd=REPO_ROOT)
    raise typer.Exit(finished.returncode)
