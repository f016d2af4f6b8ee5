"""Per-user values stay exact under incremental refresh: whatever interleaving of assignments, events and
analyses happened, the kept values equal a from-scratch computation (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from store.database import Database
from store.models import ExperimentMetricStateRow, ExperimentUnitValueRow
from store.repositories import experiment_units
from store.repositories.experiment_units import dirty_count
from tests.experiments.support import Clock, definition, experiment_id, track
from tools.events.ingest import EventIngestor
from tools.experiments.analysis import ExperimentResults, analyze
from tools.experiments.service import ExperimentService

METRICS: dict[str, Any] = {
    "primary_metrics": ["onboarding_completion", "time_to_value"],
    "secondary_metrics": ["revenue", "task_completion_rate",
                          {"name": "load_p50", "kind": "quantile", "event": "page_loaded", "property": "ms"}],
}  # fmt: skip


def _numbers(results: ExperimentResults) -> list[tuple[Any, ...]]:
    rows = []
    for outcome in results.metrics:
        rows.append((outcome.metric.name, outcome.result.control.n, outcome.result.control.mean))
        rows.extend((outcome.metric.name, v.n, v.mean, v.effect, v.p_value) for v in outcome.result.variants)
    return rows


def _from_scratch(database: Database, service: ExperimentService, key: str) -> ExperimentResults:
    """Forget every kept value; the next analysis recomputes all users."""
    identifier = experiment_id(database, key)
    with database.write() as connection:
        for table in (ExperimentUnitValueRow, ExperimentMetricStateRow):
            connection.execute(delete(table).where(table.experiment_id == identifier))
    return analyze(service, key)


def _random_events(rng: random.Random, users: list[str], clock: Clock) -> list[Any]:
    events = []
    for user in rng.sample(users, k=len(users) // 3):
        when = clock.now + timedelta(minutes=rng.randint(-600, 600))
        name = rng.choice(["onboarding_completed", "report_generated", "user_signed_up", "payment_succeeded",
                           "task_completed", "task_failed", "page_loaded"])  # fmt: skip
        events.append(track(user, name, when, amount=rng.randint(1, 90), ms=rng.randint(10, 900)))
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_interleaved_ingestion_and_analyses_equal_a_fresh_computation(
    database: Database, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(experiment_units, "REFRESH_CHUNK_USERS", 37)  # many short chunks
    rng = random.Random(seed)
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("inc", **METRICS))
    service.start("inc")
    users: list[str] = []
    ingestor = EventIngestor(database)
    for round_number in range(6):
        fresh = [f"r{round_number}-u{i}" for i in range(60)]
        service.assign_many("inc", fresh)
        users += fresh
        ingestor.ingest(_random_events(rng, users, clock))
        clock.advance(hours=5)
        if round_number % 2:
            analyze(service, "inc")
            with database.read() as connection:
                assert dirty_count(connection, experiment_id(database, "inc")) == 0
    incremental = _numbers(analyze(service, "inc"))
    assert incremental == _numbers(_from_scratch(database, service, "inc"))
    assert any(row[1] for row in incremental)  # the data is not empty


def test_events_of_users_in_two_experiments_reach_both(database: Database) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    for key in ("first", "second"):
        service.create(definition(key, seed=f"seed-{key}"))
        service.start(key)
        service.assign_many(key, [f"u{i}" for i in range(200)])
    before = {key: analyze(service, key) for key in ("first", "second")}
    EventIngestor(database).ingest(
        [track(f"u{i}", "onboarding_completed", clock.now + timedelta(hours=1)) for i in range(200)]
    )
    for key in ("first", "second"):
        after = analyze(service, key).metrics[0].result
        assert before[key].metrics[0].result.control.mean == 0.0
        assert after.control.mean == 1.0 and after.variants[0].mean == 1.0  # everyone converted, in both


def test_an_analysis_without_changes_recomputes_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("quiet"))
    service.start("quiet")
    service.assign_many("quiet", [f"u{i}" for i in range(50)])
    first = analyze(service, "quiet")
    calls: list[int] = []
    original = experiment_units.claim_dirty_users

    def counting(connection: Any, experiment: int, limit: int) -> int:
        claimed = original(connection, experiment, limit)
        calls.append(claimed)
        return claimed

    monkeypatch.setattr(experiment_units, "claim_dirty_users", counting)
    assert _numbers(analyze(service, "quiet")) == _numbers(first)
    assert sum(calls) == 0
