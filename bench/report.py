"""Results on the terminal (rich), and as JSON + Markdown in the results directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from bench.context import PhaseResult
from bench.targets import Target

LATENCY_COLUMNS = ("count", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
# marathon: per window of intended send time, with the relay's lag sampled in it (short
# headings, explained by the legend: the terminal's table has to fit 80 columns)
WINDOW_COLUMNS = {
    "from_s": "from s",
    "requests": "sent",
    "held": "held",
    "sold_out": "409",
    "errors": "errors",
    "timeouts": "t/o",
    "p50_ms": "p50 ms",
    "p99_ms": "p99 ms",
    "max_ms": "max ms",
    "unpublished": "relay",
    "oldest_age_s": "wait s",
}
WINDOW_LEGEND = (
    "windows by intended send time, from the first send; sent: requests due in the window; "
    "409: sold out; t/o: timeouts; relay: events stored and not yet published, sampled in the "
    "window; wait s: how long the oldest of them had waited"
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _cpu(result: PhaseResult) -> dict[str, Any]:
    """CPU figures of a phase (sustained: of its best rate, else of its last)."""
    details = result.details
    steps = details.get("steps")
    if steps:
        best = result.summary.get("best_rate_per_s")
        details = next((s for s in steps if s["rate"] == best), steps[-1])["details"]
    cpu: dict[str, Any] = details.get("cpu", {})
    return cpu


def _error_kinds(details: dict[str, Any]) -> dict[str, int]:
    steps = details.get("steps")
    kinds: dict[str, int] = (steps[-1]["details"] if steps else details).get("error_kinds", {})
    return kinds


def _columns(outcomes: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """The latency columns, and the errors of each row where a phase counts them (journey)."""
    errors = any("errors" in figures for figures in outcomes.values())
    return LATENCY_COLUMNS + (("errors",) if errors else ())


def _statuses(details: dict[str, Any]) -> list[str]:
    """Per route, how many answers had each status (journey)."""
    return [
        f"{route}: " + ", ".join(f"{status} x {count:,}" for status, count in counts.items())
        for route, counts in details.get("statuses", {}).items()
    ]


def _window_cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "from_s":
        return f"{value:g}"
    if column.endswith("_ms") and value >= 100:  # a budget of 250 ms needs no decimals there
        return f"{value:,.0f}"
    return f"{value:,.1f}" if isinstance(value, float) else _fmt(value)


def _window_cells(details: dict[str, Any]) -> list[list[str]]:
    """The marathon's windows, a row each (none for other phases)."""
    return [
        [_window_cell(column, window[column]) for column in WINDOW_COLUMNS]
        for window in details.get("windows", [])
    ]


def _growth(details: dict[str, Any]) -> list[str]:
    """The database's growth over a marathon, whole and by its biggest tables."""
    growth = details.get("db_growth")
    if not growth:
        return []

    def line(name: str, f: dict[str, float]) -> str:
        return (
            f"{name}: {f['mb_before']:,.1f} -> {f['mb_after']:,.1f} MB (+{f['mb_growth']:,.1f}; "
            f"{f['mb_per_million_bookings']:,.1f} MB per million bookings)"
        )

    lines = [line(f"database, over {growth['bookings']:,} bookings", growth["database"])]
    lines += [line(f"table {name}", f) for name, f in growth["tables"].items()]
    return lines


def show_phase(console: Console, result: PhaseResult) -> None:
    table = Table(title=f"{result.name}", title_justify="left")
    table.add_column("outcome")
    columns = _columns(result.outcomes)
    for column in columns:
        table.add_column(column.replace("_ms", " ms"), justify="right")
    for outcome, figures in result.outcomes.items():
        table.add_row(outcome, *(_fmt(figures.get(column, "n/a")) for column in columns))
    console.print(table)
    for line in _statuses(result.details):
        console.print(f"  statuses {line}")
    if "response_ms_from_throughput" in result.details:  # journey: the closed loop's own check
        console.print(
            f"  closed loop: N/X - Z = {result.details['response_ms_from_throughput']} ms; "
            f"generator timers late p99 {result.details['generator_timer_lag']['p99_ms']} ms, "
            f"{result.details['reconnects']:,} reconnections"
        )
    windows = _window_cells(result.details)
    if windows:
        table = Table(
            title=f"{result.name} by window",
            title_justify="left",
            caption=WINDOW_LEGEND,
            caption_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for heading in WINDOW_COLUMNS.values():
            table.add_column(heading, justify="right")
        for cells in windows:
            table.add_row(*cells)
        console.print(table)
    for line in _growth(result.details):
        console.print(f"  {line}")
    for step in result.details.get("steps", []):
        console.print(
            f"  {step['rate']:>6,}/s offered: {step['answered_per_s']:,}/s answered, "
            f"p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, max {step['max_ms']} ms, "
            f"failures {step['failures']}, generator lag p99 {step['generator_lag_p99_ms']} ms"
            f"{_batches(step)} " + ("[green]pass[/green]" if step["passed"] else "[red]fail[/red]")
        )
    console.print(
        "  " + ", ".join(f"{k} [bold]{_fmt(v)}[/bold]" for k, v in result.summary.items())
    )
    cpu = _cpu(result)
    if cpu:
        console.print(
            f"  cores used: load generator {cpu['load_generator_cores']:.2f} "
            f"({cpu['load_generator_share_of_machine']:.0%} of the machine), "
            f"app {cpu['app_cores']:.2f}, "
            f"payment provider {cpu.get('payment_provider_cores', 0):.2f}, postgres+redis+other "
            f"{cpu['postgres_redis_other_cores']:.2f} (machine {cpu['machine_cores']:.2f})"
        )
    for kind, count in _error_kinds(result.details).items():
        console.print(f"  [red]{count:,} x[/red] {kind}")
    broken = result.broken_checks
    if broken:
        for name, verdict in broken.items():
            console.print(f"  [bold red]CHECK FAILED[/bold red] {name}: {verdict}")
    else:
        console.print(f"  [green]{len(result.checks)} invariant checks ok[/green]")
    for problem in result.problems:
        console.print(f"  [bold red]PROBLEM[/bold red] {problem}")
    for note in result.notes:
        console.print(f"  [yellow]note[/yellow] {note}")


def _client_share(cpu: dict[str, Any]) -> str:
    if not cpu:
        return "n/a"
    return f"{cpu['load_generator_cores']} ({cpu['load_generator_share_of_machine']:.0%})"


def targets_table(found: list[Target]) -> Table:
    table = Table(title="targets (ratios from this run)", title_justify="left")
    for column in ("target", "value", "goal", "met"):
        table.add_column(column)
    for target in found:
        met = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "n/a"}[target.met]
        table.add_row(target.name, target.value, target.goal, met)
    return table


def _journey_config(config: dict[str, Any]) -> str:
    if "journey" not in config["phases"]:
        return ""
    low, high = config["journey_think"]
    return (
        f" Journey: {config['journey_users']:,} users, ramp {config['journey_ramp']:g} s, "
        f"{config['journey_duration']:g} s, think {low:g}-{high:g} s, "
        f"{config['journey_pay_share']:.0%} of holds paid."
    )


def _marathon_config(config: dict[str, Any]) -> str:
    if "marathon" not in config["phases"]:
        return ""
    rate = config["marathon_rate"]
    return (
        f" Marathon: {config['marathon_tickets']:,} tickets, "
        + (f"{rate:,} bookings/s" if rate else "rate: sustained's best, else 2,000/s")
        + f", windows of {config['marathon_window']:g} s, p99 budget "
        f"{config['marathon_p99_budget_ms']:g} ms."
    )


def markdown(document: dict[str, Any]) -> str:
    machine, config = document["machine"], document["config"]
    lines = [
        f"# TicketFlow benchmark — {document['finished_at']}",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['ram_gib']} GiB "
        f"RAM, PostgreSQL {machine['postgresql']} (synchronous_commit "
        f"{machine['postgresql_synchronous_commit']}), Python {machine['python']}, granian "
        f"{machine['granian']}, commit {machine['commit']}"
        + (" + uncommitted changes" if machine["uncommitted_changes"] else "")
        + ". Load generator, app, PostgreSQL and Redis all on this one machine; "
        f"{machine['busy_cores_before_run']} cores were busy before the run started.",
        "",
        f"Config: {config['buyers']:,} buyers, {config['tickets']:,} tickets, "
        f"{config['workers']} app workers on {config.get('server', 'granian')}, "
        f"{config['clients']} load-generator processes, "
        f"{config['connections']} connections x {config['duration']:g} s (closed loop), "
        f"booking engine {config['engine']}, "
        f"idempotency keys {'on' if config['idempotency_keys'] else 'off'}."
        + _journey_config(config)
        + _marathon_config(config),
        "",
        "| phase | headline | load generator cores (share) | app cores | payment provider cores "
        "| postgres+redis+other | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in document["phases"]:
        cpu = _cpu(
            PhaseResult(
                **{k: phase[k] for k in ("name", "summary", "outcomes")}, details=phase["details"]
            )
        )
        headline = ", ".join(f"{k} {_fmt(v)}" for k, v in phase["summary"].items())
        lines.append(
            f"| {phase['name']} | {headline} | {_client_share(cpu)} | "
            f"{cpu.get('app_cores', 'n/a')} | {cpu.get('payment_provider_cores', 'n/a')} | "
            f"{cpu.get('postgres_redis_other_cores', 'n/a')} | "
            f"{'yes' if phase['ok'] else '**NO**'} |"
        )
    for phase in document["phases"]:
        columns = _columns(phase["outcomes"])
        lines += [
            "",
            f"## {phase['name']}",
            "",
            "| outcome | " + " | ".join(columns) + " |",
            "|---" * (len(columns) + 1) + "|",
        ]
        for outcome, figures in phase["outcomes"].items():
            lines.append(
                f"| {outcome} | " + " | ".join(_fmt(figures.get(c, "n/a")) for c in columns) + " |"
            )
        lines += [f"- statuses {line}" for line in _statuses(phase["details"])]
        windows = _window_cells(phase["details"])
        if windows:
            lines += [
                "",
                f"By window ({WINDOW_LEGEND}):",
                "",
                "| " + " | ".join(WINDOW_COLUMNS.values()) + " |",
                "|---" * len(WINDOW_COLUMNS) + "|",
            ]
            lines += ["| " + " | ".join(cells) + " |" for cells in windows]
            lines.append("")
        lines += [f"- {line}" for line in _growth(phase["details"])]
        for step in phase["details"].get("steps", []):
            lines.append(
                f"- {step['rate']:,}/s: p99 {step['p99_ms']} ms, failures {step['failures']}, "
                f"generator lag p99 {step['generator_lag_p99_ms']} ms{_batches(step)} — "
                + ("pass" if step["passed"] else "fail")
            )
        lines += [f"- {n:,} x `{kind}`" for kind, n in _error_kinds(phase["details"]).items()]
        lines += [f"- **{problem}**" for problem in phase["problems"]]
        lines += [f"- note: {note}" for note in phase["notes"]]
        broken = {k: v for k, v in phase["checks"].items() if v != "ok"}
        lines.append(
            f"- invariant checks: {len(phase['checks'])} run, "
            + (f"**BROKEN: {broken}**" if broken else "all ok")
        )
    lines += ["", "## Targets", "", "| target | value | goal | met |", "|---|---|---|---|"]
    for target in document["targets"]:
        met = {True: "met", False: "**missed**", None: "n/a"}[target["met"]]
        lines.append(f"| {target['name']} | {target['value']} | {target['goal']} | {met} |")
    return "\n".join(lines) + "\n"


def write_results(directory: Path, document: dict[str, Any]) -> list[Path]:
    """latest.json + latest.md, and a timestamped copy of each."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text_json = json.dumps(document, indent=2, default=str) + "\n"
    text_md = markdown(document)
    written = []
    for name, content in (
        ("latest.json", text_json),
        ("latest.md", text_md),
        (f"run-{stamp}.json", text_json),
        (f"run-{stamp}.md", text_md),
    ):
        path = directory / name
        path.write_text(content)
        written.append(path)
    return written


def _batches(step: dict[str, Any]) -> str:
    """How the hold batches went in a sustained step, and how the app timed its holds, when
    the app said (its /metrics)."""
    figures = ""
    if "holds_per_batch" in step:
        figures = f", {step['holds_per_batch']} holds per batch, {step['batch_ms']} ms per batch"
    if "app_within_100ms" in step:
        within, p99 = step["app_within_100ms"], step["app_p99_at_most_ms"]
        bound = f"p99 at most {p99:g} ms" if p99 is not None else "p99 past the last bucket"
        figures += f", app: {within:.1%} within 100 ms, {bound}"
    return figures
