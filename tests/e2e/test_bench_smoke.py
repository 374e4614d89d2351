"""The benchmark runs end to end on tiny numbers: its own stack comes and goes, every phase
measures, the invariant checks run after each one, and the results are written. Timings are the
benchmark's output, never asserted here."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import asyncpg
from rich.console import Console

from bench.config import PHASES, BenchConfig
from bench.runner import run

from ..conftest import PG_SERVER_URL

TINY = BenchConfig(
    buyers=200,
    tickets=50,
    workers=1,
    clients=1,
    connections=16,
    duration=1.0,
    rates=(100,),
    step_duration=1.0,
    open_connections=16,
    journey_users=40,
    journey_ramp=1.0,
    journey_duration=4.0,
    journey_think=(0.05, 0.2),
    timeout=15.0,
    postgres_url=PG_SERVER_URL,
)


async def bench_databases() -> set[str]:
    connection = await asyncpg.connect(PG_SERVER_URL)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench_%'"
        )
    finally:
        await connection.close()
    return {row["datname"] for row in rows}


async def test_bench_runs_every_phase_checks_invariants_and_writes_results(
    tmp_path: Path,
) -> None:
    output = io.StringIO()
    databases_before = await bench_databases()

    status = await run(replace(TINY, results_dir=tmp_path), Console(file=output))

    assert status == 0, output.getvalue()
    document = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# TicketFlow benchmark")
    phases = {phase["name"]: phase for phase in document["phases"]}
    assert list(phases) == list(PHASES)
    for phase in phases.values():
        assert phase["checks"], f"{phase['name']}: no invariant check ran"
        assert set(phase["checks"].values()) == {"ok"}, phase["checks"]
        assert not phase["problems"], phase["problems"]
    burst = phases["burst"]["summary"]
    assert (burst["held"], burst["stored_held"], burst["left"]) == (50, 50, 0)
    assert phases["baseline-lock"]["summary"]["stored_held"] == 50
    journey = phases["journey"]
    # Buyers went all the way: paid through the provider, then shown their tickets.
    assert journey["summary"]["paid"] > 0 and journey["summary"]["tickets_shown"] > 0
    assert journey["details"]["statuses"]["tickets"].get("200", 0) > 0
    assert any(name.startswith("journey: every 201 payment") for name in journey["checks"])
    assert document["machine"]["postgresql"]
    assert any(target["name"].startswith("burst: exactly T held") for target in document["targets"])
    # Only ours must be gone: another bench on this server may start or finish meanwhile.
    left_behind = await bench_databases() - databases_before
    assert not left_behind, f"the throwaway database was left behind: {left_behind}"
