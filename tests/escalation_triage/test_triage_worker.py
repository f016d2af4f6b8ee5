"""The worker runs the escalation agent after a check that opened, fired or resolved escalations; on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from feedbackloop.escalation_triage import triage_of
from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from tests.escalation_triage.planted import CHECK_AT, plant_incident


def test_a_check_that_opens_escalations_is_triaged_and_ticketed(database: Database, tmp_path: Path) -> None:
    plant_incident(database, check=False)
    backlog = tmp_path / "backlog.jsonl"
    settings = Settings(database_url=database.url, notification_file=tmp_path / "n.jsonl", tickets_jsonl_path=backlog,
                        escalation_ticket_after_minutes=0)  # fmt: skip
    worker = Worker(database, settings, clock=lambda: CHECK_AT, notifiers={})
    result = worker.check(CHECK_AT)
    assert result is not None and len(result.opened) == 2
    triages = [triage_of(database, escalation_id) for escalation_id in result.opened]
    assert all(t is not None and t["probable_causes"][0]["title"] == "deployment v1.4.0" for t in triages)
    assert triages[0] is not None and triages[1] is not None
    assert triages[0]["incident_id"] == triages[1]["incident_id"]
    [ticket] = backlog.read_text().splitlines()
    assert "v1.4.0" in json.loads(ticket)["body"]
    assert worker.check(CHECK_AT) is not None  # nothing new: no triage, no second ticket
    assert len(backlog.read_text().splitlines()) == 1
