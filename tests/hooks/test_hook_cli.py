"""`feedbackloop hook deploy` on SQLite and PostgreSQL: straight into the database, and through --api-url to a
real server (uvicorn on a loopback port) with the key in FEEDBACKLOOP_API_KEY; bad options exit 2 naming the
option; an unreachable service or a refused key exits 1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from feedbackloop.api.app import create_app
from feedbackloop.cli import app as cli
from feedbackloop.settings import get_settings
from store.database import Database
from tests.hooks.support import create_key, deployment_events, hook_settings, retro_rows

runner = CliRunner()
WIDE = {"COLUMNS": "240"}


@pytest.fixture(autouse=True)
def backlog_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_JSONL_PATH", str(tmp_path / "backlog.jsonl"))
    monkeypatch.delenv("FEEDBACKLOOP_API_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[str]:
    """The app with keys on, served by uvicorn on a free loopback port."""
    port = _free_port()
    app = create_app(hook_settings(database, tmp_path), database)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        pytest.fail("the app did not answer /healthz within 20 s")
    yield base_url
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def hook(*arguments: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli, ["hook", "deploy", *arguments], env={**WIDE, **(env or {})})


def test_direct_mode_records_the_deployment_and_schedules_the_retro(database: Database) -> None:
    deployed_at = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    options = ["--service", "sponsor-api", "--version", "v2.4.0", "--commit", "c0ffee1",
               "--deployed-at", deployed_at.isoformat(), "--database-url", database.url]  # fmt: skip
    result = hook(*options, "--format", "json")
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["duplicate"] is False and outcome["escalation_check"]["status"] == "ran"
    assert outcome["retro"]["status"] == "scheduled"
    assert datetime.fromisoformat(outcome["retro"]["run_after"]) == deployed_at + timedelta(hours=24)
    [event] = deployment_events(database)
    assert event["properties"]["commit"] == "c0ffee1" and event["timestamp"] == deployed_at
    [row] = retro_rows(database)
    assert (row["status"], row["run_after"]) == ("scheduled", deployed_at + timedelta(hours=24))

    again = hook(*options)
    assert again.exit_code == 0, again.output
    assert "already recorded" in again.stdout and f"{row['id']}: scheduled" in again.stdout
    assert (len(deployment_events(database)), len(retro_rows(database))) == (1, 1)


def test_direct_mode_immediate_runs_the_retro_before_it_exits(database: Database) -> None:
    deployed_at = datetime.now(UTC) - timedelta(hours=26)
    result = hook("--service", "sponsor-api", "--version", "v2.2.0", "--deployed-at", deployed_at.isoformat(),
                  "--immediate", "--database-url", database.url)  # fmt: skip
    assert result.exit_code == 0, result.output
    [row] = retro_rows(database)
    assert row["status"] == "completed", row["error"]
    assert f"{row['id']}: completed" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["--service", "sponsor-api", "--version", ""], "--version"),
        (
            ["--service", "sponsor-api", "--version", "v1", "--deployed-at", "2099-01-01T00:00:00Z"],
            "--deployed-at",
        ),
        (
            ["--service", "sponsor-api", "--version", "v1", "--deployed-at", "2026-05-01 12:00"],
            "--deployed-at",
        ),
        (["--service", "x" * 200, "--version", "v1"], "--service"),
        (["--service", "sponsor-api", "--version", "v1", "--format", "xml"], "--format"),
        (["--service", "sponsor-api", "--version", "v1", "--immediate"], "--immediate"),
        (["--service", "sponsor-api", "--version", "v1", "--api-url", "ftp://x"], "--api-url"),
        (
            ["--service", "sponsor-api", "--version", "v1", "--api-url", "http://feedbackloop.internal"],
            "--api-url",
        ),
    ],
)
def test_bad_options_exit_2_naming_the_option(database: Database, arguments: list[str], option: str) -> None:
    result = hook(*arguments, "--database-url", database.url)
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    assert deployment_events(database) == [] and retro_rows(database) == []


def test_api_mode_posts_to_the_service_with_the_key(server: str, database: Database) -> None:
    key = create_key(database, "ingest")
    arguments = ["--service", "sponsor-api", "--version", "v2.5.0", "--api-url", server, "--format", "json"]
    result = hook(*arguments, env={"FEEDBACKLOOP_API_KEY": key})
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["delivery"]["source"] == "deploy" and outcome["retro"]["status"] == "scheduled"
    assert [row["version"] for row in retro_rows(database)] == ["v2.5.0"]

    again = hook(*arguments[:-2], env={"FEEDBACKLOOP_API_KEY": key, "FEEDBACKLOOP_API_URL": server})
    assert again.exit_code == 0 and "already recorded" in again.stdout
    assert len(deployment_events(database)) == 1


def test_api_mode_without_a_valid_key_exits_1(server: str, database: Database) -> None:
    result = hook("--service", "sponsor-api", "--version", "v2.5.0", "--api-url", server,
                  env={"FEEDBACKLOOP_API_KEY": "flk_nothing_real"})  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "401" in result.stderr and "FEEDBACKLOOP_API_KEY" in result.stderr
    assert deployment_events(database) == []


def test_api_mode_with_the_service_down_exits_1() -> None:
    down = f"http://127.0.0.1:{_free_port()}"
    result = hook("--service", "sponsor-api", "--version", "v2.5.0", "--api-url", down)
    assert result.exit_code == 1
    assert "could not reach" in result.stderr
