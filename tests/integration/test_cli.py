"""The `ticketflow` command: help on every command, and failures an operator can fix end in one
clear line and a non-zero status, not a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from ticketflow.cli import app

from ..e2e.servers import TICKETFLOW, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def command_paths(group: TyperGroup, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's words, sub-commands (`projections rebuild`) included."""
    paths: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        paths.append(path)
        if isinstance(command, TyperGroup):
            paths.extend(command_paths(command, path))
    return paths


COMMANDS = command_paths(typer.main.get_group(app))


def test_the_cli_offers_every_command_of_the_operations_guide() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {
        "serve",
        "migrate",
        "seed-demo",
        "create-admin",
        "sweep",
        "reconcile",
        "projections rebuild",
        "payment-provider",
        "bench",
    }
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_explains_itself_with_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Options" in result.output
    assert "--help" in result.output
    summary = typer.main.get_group(app)
    for word in path:
        summary = summary.commands[word]  # type: ignore[attr-defined]
    assert summary.help and summary.help.split()[0] in result.output


def without_our_settings(**settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TICKETFLOW_")}
    return {**env, **{f"TICKETFLOW_{name.upper()}": value for name, value in settings.items()}}


def test_migrate_against_a_database_nobody_serves_fails_in_one_clear_line() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/ticketflow"
    finished = subprocess.run(
        [str(TICKETFLOW), "migrate"],
        env=without_our_settings(database_url=url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 1
    assert "Traceback" not in finished.stdout + finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith(f"error: cannot reach the database {url}: ")


def test_a_bad_setting_is_named_instead_of_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_HOLD_TTL_SECONDS", "ten minutes")
    result = CliRunner().invoke(app, ["sweep"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: invalid setting TICKETFLOW_HOLD_TTL_SECONDS" in result.output


def test_bench_hands_its_arguments_to_the_benchmark_of_the_checkout() -> None:
    finished = subprocess.run(
        [str(TICKETFLOW), "bench", "--", "--help"],
        cwd=REPO_ROOT / "tests",  # any directory: the benchmark runs from the checkout's root
        env=without_our_settings(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert "--phases" in finished.stdout
