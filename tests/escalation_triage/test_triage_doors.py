"""Triage through the doors (POST /v1/escalations/{id}/triage, the `triage` field of GET /v1/escalations/{id},
`feedbackloop escalations triage|show`) and the resolution summary; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from feedbackloop.api.app import create_app
from feedbackloop.cli import app as cli
from feedbackloop.escalation_triage import run_triage, triage_of
from feedbackloop.settings import Settings, get_settings
from store.database import Database
from tests.escalation.support import Clock, day, service
from tests.escalation_triage.planted import CHECK_AT, plant_incident
from tools.escalation.triage.record import summarise_resolutions

runner = CliRunner()


@pytest.fixture
def opened(database: Database) -> list[str]:
    return plant_incident(database)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    routes = [{"team": "reports", "channel": "#reports-oncall", "persona": "podcast_network"}]
    return Settings(
        database_url=database.url, notification_file=tmp_path / "n.jsonl", escalation_routes=routes,
        tickets_jsonl_path=tmp_path / "backlog.jsonl",
    )  # fmt: skip


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database)) as test_client:
        yield test_client


def test_http_triage_groups_both_and_get_shows_it(client: TestClient, opened: list[str]) -> None:
    assert client.get(f"/v1/escalations/{opened[0]}").json()["triage"] is None
    response = client.post(f"/v1/escalations/{opened[0]}/triage")
    assert response.status_code == 200, response.text
    [incident] = response.json()["incidents"]
    assert sorted(incident["escalation_ids"]) == sorted(opened)
    assert incident["triage"] == "rules"
    assert incident["owner"] == {"team": "reports", "channel": "#reports-oncall"}
    cause = incident["probable_causes"][0]
    deployment = next(e for e in incident["evidence"] if e["id"] == cause["evidence_ids"][0])
    assert (cause["title"], deployment["kind"], deployment["subject"]) == (
        "deployment v1.4.0", "deployment", "v1.4.0"
    )  # fmt: skip
    for escalation_id in opened:
        shown = client.get(f"/v1/escalations/{escalation_id}").json()
        assert shown["triage"]["incident_id"] == incident["incident_id"]
        assert [h["kind"] for h in shown["history"]].count("triaged") == 1
    again = client.post(f"/v1/escalations/{opened[1]}/triage").json()["incidents"][0]
    assert again["incident_id"] == incident["incident_id"]
    assert client.post("/v1/escalations/esc_nothere/triage").status_code == 404


@pytest.fixture
def backlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI's settings (cached per process) with the JSONL ticket sink in the test's directory."""
    path = tmp_path / "cli-backlog.jsonl"
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_JSONL_PATH", str(path))
    get_settings.cache_clear()
    yield path
    monkeypatch.undo()
    get_settings.cache_clear()


def invoke(database: Database, *arguments: str) -> Any:
    return runner.invoke(
        cli, ["escalations", *arguments, "--database-url", database.url], env={"COLUMNS": "240"}
    )


def test_cli_triage_and_show(database: Database, opened: list[str], backlog: Path) -> None:
    result = invoke(database, "triage", "--format", "json")
    assert result.exit_code == 0, result.output
    [incident] = json.loads(result.output)["incidents"]
    assert incident["probable_causes"][0]["title"] == "deployment v1.4.0"
    table = invoke(database, "triage", opened[0])
    assert (
        table.exit_code == 0
        and "deployment v1.4.0" in table.output
        and incident["incident_id"] in table.output
    )
    shown = invoke(database, "show", opened[0], "--format", "json")
    assert json.loads(shown.output)["triage"]["incident_id"] == incident["incident_id"]
    assert (
        len(backlog.read_text().splitlines()) == 1
    )  # the critical escalation has fired long enough: one ticket
    assert "probable causes" in invoke(database, "show", opened[1]).output
    assert invoke(database, "triage", "esc_nothere").exit_code == 2


def test_resolution_summary_goes_into_the_history_once(
    database: Database, opened: list[str], tmp_path: Path
) -> None:
    settings = Settings(database_url=database.url, tickets_jsonl_path=tmp_path / "backlog.jsonl")
    [incident] = run_triage(database, settings, opened, clock=lambda: CHECK_AT)
    escalations = service(database, clock=Clock(day(8)))
    escalations.resolve(opened[0], "alice", "rolled back v1.4.0")
    assert summarise_resolutions(database, day(8)) == []  # one escalation still firing
    escalations.resolve(opened[1], "alice", "rolled back v1.4.0")
    assert summarise_resolutions(database, day(8)) == [incident["incident_id"]]
    assert summarise_resolutions(database, day(8)) == []
    stored = triage_of(database, opened[1])
    assert stored is not None and "rolled back v1.4.0" in stored["resolution_summary"]
    assert "deployment v1.4.0" in stored["resolution_summary"]
    history = escalations.get(opened[0]).history
    assert [h["kind"] for h in history].count("resolution_summary") == 1
