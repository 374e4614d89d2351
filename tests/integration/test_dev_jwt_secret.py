"""Without a configured JWT secret outside production, the embedded setup signs with a random
secret generated on first start and kept beside its database, shared by every process on it."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from ticketflow.adapters.secret_file import kept_secret
from ticketflow.adapters.security import SigningKeys
from ticketflow.api.app import create_app
from ticketflow.config import DEMO_JWT_SECRET, Settings
from ticketflow.production_safety import (
    UnsafeProductionSettings,
    example_secrets,
    production_problems,
)


def _embedded(tmp_path: Path, **values: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'ticketflow.db'}", **values)


def test_the_secret_is_generated_once_beside_the_database_and_kept(tmp_path: Path) -> None:
    settings = _embedded(tmp_path)
    assert settings.dev_jwt_secret_file == tmp_path / "ticketflow.db.jwt-secret"
    first = SigningKeys.from_settings(settings).active_secret
    assert first not in (DEMO_JWT_SECRET, "") and len(first) >= 64
    kept_in = tmp_path / "ticketflow.db.jwt-secret"
    assert stat.S_IMODE(kept_in.stat().st_mode) == 0o600
    assert SigningKeys.from_settings(_embedded(tmp_path)).active_secret == first  # a restart
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ticketflow.db.jwt-secret"]
    other = tmp_path / "other"
    other.mkdir()
    assert SigningKeys.from_settings(_embedded(other)).active_secret != first


def test_processes_starting_at_once_all_get_the_same_secret(tmp_path: Path) -> None:
    path = tmp_path / "ticketflow.db.jwt-secret"
    starting = threading.Barrier(8)
    found: list[str] = []

    def start() -> None:
        starting.wait()
        found.append(kept_secret(path))

    workers = [threading.Thread(target=start) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(found) == 8 and len(set(found)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no candidate left behind


@pytest.mark.parametrize(
    "values",
    [
        {"jwt_secret": "s" * 40},  # configured: used as it is
        {"jwt_keys": {"a": "k" * 40}, "jwt_active_kid": "a"},
        {"environment": "production", "jwt_secret": "s" * 40},
    ],
)
def test_no_secret_is_generated_when_one_is_configured(
    tmp_path: Path, values: dict[str, object]
) -> None:
    settings = _embedded(tmp_path, **values)
    assert settings.dev_jwt_secret_file is None
    SigningKeys.from_settings(settings)
    assert list(tmp_path.iterdir()) == []


def test_on_another_database_the_demo_secret_stays_the_default(postgresql_url: str) -> None:
    settings = Settings(database_url=postgresql_url)
    assert settings.dev_jwt_secret_file is None
    assert SigningKeys.from_settings(settings).active_secret == DEMO_JWT_SECRET
    assert "JWT key (TICKETFLOW_JWT_SECRET)" in example_secrets(settings)  # loopback only


def test_the_generated_secret_is_no_documented_example(tmp_path: Path) -> None:
    settings = _embedded(tmp_path, payment_webhook_secret="w" * 40)
    assert example_secrets(settings) == []  # `serve --host 0.0.0.0` is allowed


def test_production_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    settings = _embedded(tmp_path, environment="production", payment_webhook_secret="w" * 40)
    assert production_problems(settings) == [
        "JWT key (TICKETFLOW_JWT_SECRET) is unset or the demo secret: set TICKETFLOW_JWT_SECRET"
    ]
    with pytest.raises(UnsafeProductionSettings):
        create_app(settings)
    assert list(tmp_path.iterdir()) == []
