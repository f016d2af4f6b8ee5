"""run_periodic_checks (the worker's escalation check, the escalation agent's triage, delivery) and
run_sprint_retro on seeded databases; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from feedbackloop.integration import PeriodicCheckResult
from feedbackloop.retro_agent import RetroAnalysis, RetroAnalysisType
from feedbackloop.worker import check_lock
from store.database import Database
from tests.escalation_triage.planted import CHECK_AT, plant_incident
from tests.integration_facade.support import Clock, integration
from tools.events.ingest import EventIngestor
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events
from tools.tickets.jsonl import JsonlTicketSink


def test_periodic_checks_open_triage_and_notify(database: Database, tmp_path: Path) -> None:
    plant_incident(database, check=False)  # a podcast_network error spike the day v1.4.0 was deployed
    notifications = tmp_path / "notifications.jsonl"
    facade = integration(database, Clock(CHECK_AT), notification_file=notifications,
                         alert_group_wait_seconds=0)  # fmt: skip

    first = asyncio.run(facade.run_periodic_checks())
    assert isinstance(first, PeriodicCheckResult) and not first.skipped and first.at == CHECK_AT
    assert len(first.opened) == 2 and sorted(first.opened) == sorted(e.escalation_id for e in first.active)
    [incident] = first.incidents  # the escalation agent groups both into one incident
    assert sorted(incident["escalation_ids"]) == sorted(first.opened)
    assert incident["probable_causes"][0]["title"] == "deployment v1.4.0"
    delivered = notifications.read_text().splitlines() if notifications.exists() else []
    assert first.notifications_delivered == len(delivered) == first.notifications_queued == 1
    assert all(json.loads(line)["channel"] == "file" for line in delivered)

    again = asyncio.run(facade.run_periodic_checks(at=CHECK_AT))  # nothing changed: nothing new to triage
    assert (again.opened, again.fired, again.resolved, again.incidents) == ([], [], [], [])
    assert len(again.active) == 2


def test_periodic_checks_skip_while_another_worker_checks(database: Database) -> None:
    plant_incident(database, check=False)
    facade = integration(database, Clock(CHECK_AT))
    with check_lock(database) as held:
        assert held
        skipped = asyncio.run(facade.run_periodic_checks())
    assert skipped == PeriodicCheckResult(at=CHECK_AT, skipped=True)
    assert len(asyncio.run(facade.run_periodic_checks()).opened) == 2


def test_sprint_retro_on_a_seeded_database(database: Database, tmp_path: Path) -> None:
    data = SyntheticConfig(users=500, days=40, seed=5, end=datetime(2024, 1, 15, tzinfo=UTC),
                           deployments=(PlantedDeployment(day=26, error_multiplier=6.0),))  # fmt: skip
    EventIngestor(database).ingest_stream(generate_events(data))
    facade = integration(database, Clock(datetime(2024, 1, 16, tzinfo=UTC)))
    facade.ticket_sinks = [JsonlTicketSink(tmp_path / "backlog.jsonl")]

    retro = asyncio.run(
        facade.run_sprint_retro("sprint-2024-01", datetime(2024, 1, 1), datetime(2024, 1, 14))
    )
    assert isinstance(retro, RetroAnalysis) and retro.analysis_type is RetroAnalysisType.SPRINT
    assert retro.status == "completed" and retro.result["sprint_id"] == "sprint-2024-01"
    assert retro.result["window"] == {
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-15T00:00:00+00:00",
    }
    [high] = [i for i in retro.insights if i.impact == "High" and "podcast_network" in i.title]
    assert "error_rate" in high.title and high.evidence_ids
    filed = (tmp_path / "backlog.jsonl").read_text().splitlines()
    assert len(filed) == len(retro.backlog_items) > 0
