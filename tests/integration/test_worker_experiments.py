"""The worker keeps running experiments' values current, so the analysis a user asks for has nothing left to
recompute (both databases)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from store.models import ExperimentDirtyUserRow, ExperimentUnitValueRow
from tests.experiments.support import T0, definition, track
from tools.events.ingest import EventIngestor
from tools.experiments.analysis import analyze
from tools.experiments.service import ExperimentService


def _count(database: Database, table: type) -> int:
    with database.read() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_the_worker_refreshes_running_experiments(database: Database, tmp_path: Path) -> None:
    service = ExperimentService(database, clock=lambda: T0)
    service.create(definition("onboarding"))
    service.start("onboarding")
    users = [f"u{i}" for i in range(40)]
    service.assign_many("onboarding", users)
    EventIngestor(database).ingest(
        [track(u, "onboarding_completed", T0 + timedelta(hours=1)) for u in users[::2]]
    )
    assert _count(database, ExperimentDirtyUserRow) > 0  # the events marked their users for recomputation

    settings = Settings(database_url=database.url, notification_file=tmp_path / "notifications.jsonl")
    report = Worker(database, settings, clock=lambda: T0 + timedelta(hours=2)).run_once()

    assert report.errors == []
    assert report.experiments is not None and report.experiments["onboarding"] >= 20
    assert _count(database, ExperimentDirtyUserRow) == 0
    stored = _count(database, ExperimentUnitValueRow)
    results = analyze(service, "onboarding", now=T0 + timedelta(hours=3))
    assert _count(database, ExperimentUnitValueRow) == stored  # the analysis found nothing left to refresh
    assert sum(results.units.values()) == 40
