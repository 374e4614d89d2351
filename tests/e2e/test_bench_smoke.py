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

from bench.config import DEFAULT_PHASES, BenchConfig
from bench.report import WINDOW_COLUMNS
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

    status = await run(replace(TINY, results_dir=tmp_path), Console(file=output))

    assert status == 0, output.getvalue()
    document = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# TicketFlow benchmark")
    phases = {phase["name"]: phase for phase in document["phases"]}
    assert list(phases) == list(DEFAULT_PHASES)  # the marathon only when asked for
    for phase in phases.values():
        assert phase["checks"], f"{phase['name']}: no invariant check ran"
        assert set(phase["checks"].values()) == {"ok"}, phase["checks"]
        assert not phase["problems"], phase["problems"]
    burst = phases["burst"]["summary"]
    assert (burst["held"], burst["stored_held"], burst["left"]) == (50, 50, 0)
    assert phases["baseline-lock"]["summary"]["stored_held"] == 50
    for step in phases["sustained"]["details"]["steps"]:  # the app's own batch counters
        assert step["holds_per_batch"] >= 1 and step["batch_ms"] > 0, step
        assert 0 < step["app_within_100ms"] <= 1, step  # and its own timing of the holds
    pages = phases["pages"]["summary"]  # the web page, compared with browse's API read
    assert pages["req_per_s"] > 0 and isinstance(pages["of_browse"], float)
    assert pages["cache_hit_rate"] != "n/a"  # the page says X-Cache as the API's read does
    journey = phases["journey"]
    # Buyers went all the way: paid through the provider, then shown their tickets.
    assert journey["summary"]["paid"] > 0 and journey["summary"]["tickets_shown"] > 0
    assert journey["details"]["statuses"]["tickets"].get("200", 0) > 0
    assert any(name.startswith("journey: every 201 payment") for name in journey["checks"])
    mails = journey["details"]["mails_at_end"]  # what the consumers still owed when it stopped
    assert 0 <= mails["mailed"] <= mails["confirmed"]
    assert mails["confirmed"] >= journey["summary"]["paid"]  # + any whose answer was lost
    assert document["machine"]["postgresql"]
    assert any(target["name"].startswith("burst: exactly T held") for target in document["targets"])
    # Ours, by name: another bench on this server may start or finish meanwhile.
    assert document["database"].startswith("bench_")
    assert document["database"] not in await bench_databases(), "the database was left behind"


async def test_bench_marathon_sells_exactly_its_tickets_and_reports_each_window(
    tmp_path: Path,
) -> None:
    output = io.StringIO()
    config = replace(
        TINY,
        phases=("marathon",),
        marathon_tickets=300,
        marathon_rate=200,
        marathon_window=1.0,
        results_dir=tmp_path,
    )

    status = await run(config, Console(file=output))

    assert status == 0, output.getvalue()
    document = json.loads((tmp_path / "latest.json").read_text())
    (marathon,) = document["phases"]
    summary, details = marathon["summary"], marathon["details"]
    assert set(marathon["checks"].values()) == {"ok"}, marathon["checks"]
    assert any("counted" in name for name in marathon["checks"]), marathon["checks"]
    assert (summary["held"], summary["stored_held"], summary["left"]) == (300, 300, 0)
    assert summary["exactly_N_held"] is True
    assert summary["sold_out"] > 0 and summary["sell_out_s"] > 0
    # Sent until sold out, not every request due: the margin's requests were never sent.
    assert summary["held"] + summary["sold_out"] < details["requests_due"]
    windows = details["windows"]
    assert len(windows) >= 2, windows  # 300 tickets at 200/s: 1.5 s of 1 s windows
    assert sum(window["held"] for window in windows) == 300
    assert all(window["p99_ms"] > 0 for window in windows)
    assert summary["windows"] == len(windows)
    assert details["relay_lag_samples"], "the relay's lag was never sampled"
    assert summary["relay_caught_up_s"] is not None
    growth = details["db_growth"]
    assert growth["bookings"] == 300 and growth["database"]["mb_after"] > 0
    assert growth["tables"], "no table sizes"
    assert details["cpu"]["load_generator_cores"] >= 0
    window_heading = "| " + " | ".join(WINDOW_COLUMNS.values()) + " |"
    assert window_heading in (tmp_path / "latest.md").read_text()
    targets = {target["name"]: target for target in document["targets"]}
    assert targets["marathon: exactly N held (stored, and answered 201)"]["met"] is True
    assert targets["burst drain time"]["met"] is None  # not run: n/a
    assert document["database"] not in await bench_databases(), "the database was left behind"


async def test_bench_room_sells_through_its_waiting_room_from_the_load_generator(
    tmp_path: Path,
) -> None:
    output = io.StringIO()
    config = replace(
        TINY,
        clients=2,  # the crowd split over two processes, paused and resumed at the opening
        phases=("room",),
        room_joins=60,
        room_prequeue=30,
        room_tickets=6,
        room_join_rate=400.0,
        room_connections=8,
        room_unadmitted=6,
        results_dir=tmp_path,
    )

    status = await run(config, Console(file=output))

    assert status == 0, output.getvalue()
    document = json.loads((tmp_path / "latest.json").read_text())
    (room,) = document["phases"]
    summary, details = room["summary"], room["details"]
    assert set(room["checks"].values()) == {"ok"}, room["checks"]
    assert (summary["held"], summary["stored_held"], summary["left"]) == (6, 6, 0)
    assert summary["joins"] == 60 and summary["pre_queue_joins"] == 30
    assert summary["admitted"] >= 6
    assert (summary["unadmitted_sent"], summary["unadmitted_accepted"]) == (6, 0)
    assert summary["out_of_order_after_opening"] == 0
    assert summary["queue_req_per_s"] > 0
    assert summary["queue_ceiling_places"] == 60, details["queue_ceiling_joins_refused"]
    assert details["cpu"]["load_generator_cores"] >= 0
    buyers = json.loads((tmp_path / "room-buyers.json").read_text())
    assert len(buyers) == 60 and sum(buyer["booked"] == 201 for buyer in buyers) == 6
