"""Settings safety rules and the `fxdesk` command line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from fxdesk.cli import app as cli
from fxdesk.config import ConfigError, Settings

runner = CliRunner()


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Settings(data_dir=data_dir)
    first.prepare()
    assert data_dir.is_dir()
    assert first.secret_key and len(first.secret_key) >= 32
    assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0  # readable by the owner only
    second = Settings(data_dir=data_dir)
    second.prepare()
    assert second.secret_key == first.secret_key


@pytest.mark.parametrize("secret", [None, "short", "changeme" * 8, "a" * 64])
def test_production_refuses_weak_or_missing_secrets(tmp_path: Path, secret: str | None) -> None:
    settings = Settings(data_dir=tmp_path, environment="production", secret_key=secret)
    with pytest.raises(ConfigError, match="FXDESK_SECRET_KEY"):
        settings.prepare()


@pytest.mark.parametrize(
    "shared",
    [
        {"nats_url": "nats://127.0.0.1:4222"},
        {"database_url": "postgresql+asyncpg://fx@127.0.0.1/fx"},
        {"database_url": "postgresql+asyncpg://fx@127.0.0.1/fx", "nats_url": "nats://n1:4222"},
    ],
)
def test_shared_state_without_a_secret_refuses_to_start(
    tmp_path: Path, shared: dict[str, Any]
) -> None:
    settings = Settings(data_dir=tmp_path, **shared)
    with pytest.raises(ConfigError, match="every instance"):
        settings.prepare()
    assert not (tmp_path / "secret_key").exists()
    Settings(data_dir=tmp_path, secret_key="k" * 40, **shared).prepare()  # a set key passes


def test_production_accepts_a_strong_secret(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        environment="production",
        secret_key="Zq3-vX9_kPw2Lm8RtY6uN4bH1cJ7dF0sA5eG",
    )
    settings.prepare()
    assert not (tmp_path / "secret_key").exists()


def test_serve_refuses_to_start_with_a_weak_production_secret(tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["serve"],
        env={
            "FXDESK_ENVIRONMENT": "production",
            "FXDESK_SECRET_KEY": "secret",
            "FXDESK_DATA_DIR": str(tmp_path),
        },
    )
    assert result.exit_code == 2
    assert "FXDESK_SECRET_KEY" in result.output


def test_user_create_with_password_and_with_prompt(tmp_path: Path) -> None:
    env = {"FXDESK_DATA_DIR": str(tmp_path), "FXDESK_LOG_LEVEL": "WARNING"}
    created = runner.invoke(
        cli, ["user", "create", "Chief", "--role", "admin", "--password", "chief-password"], env=env
    )
    assert created.exit_code == 0, created.output
    prompted = runner.invoke(
        cli,
        ["user", "create", "helper", "--role", "moderator"],
        env=env,
        input="helper-password\nhelper-password\n",
    )
    assert prompted.exit_code == 0, prompted.output
    duplicate = runner.invoke(
        cli, ["user", "create", "CHIEF", "--password", "another-password"], env=env
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.output
    short = runner.invoke(cli, ["user", "create", "shorty", "--password", "short"], env=env)
    assert short.exit_code == 2
    with sqlite3.connect(tmp_path / "fxdesk.db") as conn:
        rows = conn.execute(
            "SELECT username, role, password_hash FROM users ORDER BY id"
        ).fetchall()
    assert [(name, role) for name, role, _ in rows] == [("Chief", "admin"), ("helper", "moderator")]
    assert all(hash_.startswith("$argon2id$") for _, _, hash_ in rows)


def test_migrate_command_creates_the_schema(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["migrate"], env={"FXDESK_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "fxdesk.db") as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert version and journal == "wal"


def test_python_dash_m_fxdesk_shows_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fxdesk", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "migrate", "user", "healthcheck"):
        assert command in result.stdout


@pytest.mark.parametrize("replicas", [0, 6])
def test_stream_replicas_outside_1_to_5_are_refused(tmp_path: Path, replicas: int) -> None:
    assert Settings(data_dir=tmp_path).nats_stream_replicas == 1
    assert Settings(data_dir=tmp_path, nats_stream_replicas=5).nats_stream_replicas == 5
    with pytest.raises(ValidationError, match="nats_stream_replicas"):
        Settings(data_dir=tmp_path, nats_stream_replicas=replicas)


def test_an_invalid_setting_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["migrate"],
        env={"FXDESK_DATA_DIR": str(tmp_path), "FXDESK_NATS_STREAM_REPLICAS": "7"},
    )
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2
    assert "Configuration error: FXDESK_NATS_STREAM_REPLICAS:" in output
    assert "less than or equal to 5 (got '7')" in output
