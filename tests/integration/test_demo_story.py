"""The demo tells its story end to end (both databases): after deployment v1.4.0, podcast_network's errors and NPS
turn, surveys record it, and the replayed checks open the ERROR_SPIKE and VALUE_DROP escalations for that persona,
citing the deployment, with notifications written to the demo's file sink."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from feedbackloop.demo import run_demo
from store.database import Database
from tools.escalation.service import EscalationService
from tools.synthetic import SyntheticConfig


def test_demo_opens_the_planted_escalations(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo writes its dashboard and notification file next to the database
    console = Console(record=True, width=160)
    config = SyntheticConfig(users=1000, days=90, seed=7, end=datetime(2026, 6, 1, tzinfo=UTC))
    run_demo(console, database_url=database_url, config=config, reset=True)
    output = console.export_text()
    database = Database(database_url)
    try:
        escalations = EscalationService(database).escalations()
    finally:
        database.dispose()
    opened = {(e.escalation_type.value, e.affected_personas[0]) for e in escalations}
    assert {("error_spike", "podcast_network"), ("value_drop", "podcast_network")} <= opened
    spike = next(
        e
        for e in escalations
        if e.escalation_type.value == "error_spike" and e.affected_personas == ["podcast_network"]
    )
    [deployment] = [d for d in spike.related["deployments"] if d["version"] == "v1.4.0"]
    assert spike.opened_at > datetime.fromisoformat(
        deployment["deployed_at"]
    )  # it opened after the deployment
    assert spike.evidence[0].p_value is not None and spike.evidence[0].p_value < 0.01
    assert "Escalations" in output and "Error spike: error_rate for podcast_network" in output
    assert "NPS by persona around the deployment" in output
    sink = tmp_path / "notifications.jsonl"
    assert sink.exists(), output
    notifications = [json.loads(line) for line in sink.read_text().splitlines()]
    assert any("podcast_network" in json.dumps(n["notification"]["group_labels"]) for n in notifications)
    _the_retro_surfaces_the_planted_problems(output, tmp_path / "backlog.jsonl")


def _the_retro_surfaces_the_planted_problems(output: str, backlog: Path) -> None:
    """The demo's sprint retro: High insights for podcast_network's error rate and NPS, the onboarding winner, and
    the backlog items filed to the JSON lines sink, each standing on evidence a tool produced."""
    assert "Sprint retro retro-" in output and "synthesis: rules" in output
    lines = [line for line in output.splitlines() if "│" in line]
    assert any(
        "High" in line and "error_rate worsened" in line and "podcast_network" in line for line in lines
    )
    assert any("High" in line and "nps worsened" in line for line in lines)
    assert "Ship the winner of experiment" in output and "onboarding-flow" in output
    filed = [json.loads(line) for line in backlog.read_text().splitlines()]
    assert filed and all(item["evidence_ids"] for item in filed)
    assert any("error_rate" in item["title"] and "podcast_network" in item["title"] for item in filed)
