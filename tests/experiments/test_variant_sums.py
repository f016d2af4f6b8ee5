"""The per-variant sums kept by deltas (experiment_variant_sums) equal a fresh aggregation of the unit rows after
every kind of change the refresh sees, the rebuild path restores missing sums, and two refreshes at once never
claim the same user (so never add the same difference twice). SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from store.database import Database
from store.models import ExperimentMetricStateRow, ExperimentVariantSumsRow
from store.repositories import experiment_units
from store.repositories.experiment_sums import fresh_sums, stored_sums
from store.repositories.experiment_units import CLAIMED_USERS, claim_dirty_users, dirty_count, mark_dirty
from tests.experiments.support import Clock, assign_in_waves, definition, experiment_id, exposed_users, track
from tools.events.ingest import EventIngestor
from tools.experiments.analysis import analyze
from tools.experiments.service import ExperimentService

METRICS: dict[str, Any] = {
    "primary_metrics": ["onboarding_completion"],
    "secondary_metrics": [
        "revenue", "task_completion_rate", "time_to_value",
        {"name": "uncorrected_reports", "kind": "mean", "event": "report_sent_uncorrected"},
        {"name": "load_p50", "kind": "quantile", "event": "page_loaded", "property": "ms"},
    ],
    "cuped": True,
}  # fmt: skip
NAMES = ["onboarding_completed", "payment_succeeded", "task_completed", "task_failed", "report_sent",
         "page_loaded", "user_signed_up", "report_generated"]  # fmt: skip


def _assert_sums_match(database: Database, key: str) -> int:
    """Stored sums equal a GROUP BY over the unit rows in every phase; returns how many variant rows compared."""
    identifier = experiment_id(database, key)
    compared = 0
    with database.read() as connection:
        states = connection.execute(
            select(ExperimentMetricStateRow.phase, ExperimentMetricStateRow.metric_key).where(
                ExperimentMetricStateRow.experiment_id == identifier
            )
        ).all()
        for phase in sorted({p for p, _ in states}):
            keys = [k for p, k in states if p == phase]
            stored, stored_counts = stored_sums(connection, identifier, phase, keys)
            fresh, fresh_counts = fresh_sums(connection, identifier, phase, keys)
            for metric_key in keys:
                # A variant whose users all went back to zero keeps a row of zeros; the GROUP BY has no row.
                kept = {v: n for v, n in stored_counts.get(metric_key, {}).items() if n}
                assert kept == fresh_counts.get(metric_key, {}), (phase, metric_key)
                for variant, totals in fresh.get(metric_key, {}).items():
                    assert stored[metric_key][variant] == pytest.approx(totals, rel=1e-9), (phase, metric_key)
                    compared += 1
                for variant, n in stored_counts.get(metric_key, {}).items():
                    if not n:
                        assert stored[metric_key][variant] == [0.0] * 8
    return compared


def _events(rng: random.Random, users: list[str], exposed: dict[str, Any], share: float) -> list[Any]:
    events = []
    for user in rng.sample(users, k=int(len(users) * share)):
        exposed_at = exposed[user][1]
        for _ in range(rng.randint(1, 3)):
            when = exposed_at + timedelta(minutes=rng.randint(-600, 3000))
            name = rng.choice(NAMES)
            events.append(
                track(user, name, when, amount=round(rng.uniform(0.5, 90), 2), ms=rng.randint(10, 900))
            )
    return events


def test_delta_sums_equal_a_fresh_aggregation_through_every_change(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiment_units, "REFRESH_CHUNK_USERS", 53)  # many chunks, each with its own delta
    rng = random.Random(11)
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("sums", **METRICS))
    service.start("sums")
    users = [f"u{i}" for i in range(400)]
    assign_in_waves(service, clock, "sums", users[:300])
    ingestor = EventIngestor(database)
    ingestor.ingest(_events(rng, users[:300], exposed_users(database, "sums"), share=0.8))
    analyze(service, "sums")
    assert _assert_sums_match(database, "sums") == 6 * 2  # every metric has values in both variants

    # Late events for some users, plus users assigned since.
    assign_in_waves(service, clock, "sums", users[300:], waves=1)
    exposed = exposed_users(database, "sums")
    ingestor.ingest(_events(rng, users, exposed, share=0.1))
    analyze(service, "sums")
    _assert_sums_match(database, "sums")

    # Values that go back to zero: every uncorrected report corrected later (the metric clamps at 0), so those
    # users' rows of that metric disappear; a variant can lose all of its rows.
    with database.read() as connection:
        sent = connection.execute(
            text("SELECT DISTINCT user_id FROM events WHERE name = 'report_sent'")
        ).scalars()
        senders = sorted(sent)
    assert senders
    ingestor.ingest([track(u, "report_corrected", exposed[u][1] + timedelta(minutes=5)) for u in senders * 4])
    analyze(service, "sums")
    _assert_sums_match(database, "sums")

    # A phase change: users drawn again move to phase 1 and are recomputed there; phase 0's rows stay.
    clock.advance(hours=1)
    service.update("sums", {"weights": [0.3, 0.7]})
    service.assign_many("sums", users[:250])
    ingestor.ingest(_events(rng, users[:250], exposed_users(database, "sums"), share=0.5))
    analyze(service, "sums")
    with database.read() as connection:
        assert dirty_count(connection, experiment_id(database, "sums")) == 0
    assert _assert_sums_match(database, "sums") >= 6 * 2 * 2 - 2  # both phases (one may have lost a variant)

    # The rebuild path: sums gone (a database migrated mid-refresh, rows removed by hand) are rebuilt once, for
    # the phase analysed (phase 0's are left alone).
    identifier = experiment_id(database, "sums")
    sums = ExperimentVariantSumsRow
    with database.write() as connection:
        connection.execute(delete(sums).where(sums.experiment_id == identifier, sums.phase == 1))
    ingestor.ingest(_events(rng, users[:250], exposed_users(database, "sums"), share=0.05))
    analyze(service, "sums")
    _assert_sums_match(database, "sums")


def test_the_migration_backfill_equals_the_unit_rows(database: Database) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("backfill", **METRICS))
    service.start("backfill")
    users = [f"b{i}" for i in range(120)]
    assign_in_waves(service, clock, "backfill", users)
    EventIngestor(database).ingest(_events(random.Random(3), users, exposed_users(database, "backfill"), 0.9))
    analyze(service, "backfill")
    migration = importlib.import_module("store.migrations.versions.0013_experiment_variant_sums")
    with database.write() as connection:
        connection.execute(delete(ExperimentVariantSumsRow))
        connection.execute(text(migration.BACKFILL))
    assert _assert_sums_match(database, "backfill") > 10


def test_two_refreshes_at_once_claim_disjoint_users(database: Database) -> None:
    """The second refresh skips the users the first holds instead of taking them too (PostgreSQL locks the dirty
    rows it claims; SQLite admits one writer at a time, so there is nothing to interleave)."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite serialises writers")
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("claims"))
    service.start("claims")
    users = [f"c{i:03d}" for i in range(100)]
    service.assign_many("claims", users)
    identifier = experiment_id(database, "claims")
    with database.write() as connection:
        mark_dirty(connection, identifier, users)
    with database.write() as first, database.write() as second:
        second.exec_driver_sql("SET LOCAL lock_timeout = '5s'")  # a regression blocks: fail, do not hang
        assert claim_dirty_users(first, identifier, 30) == 30
        assert claim_dirty_users(second, identifier, 1_000) == 70
        held = set(first.execute(select(CLAIMED_USERS.c.user_id)).scalars())
        taken = set(second.execute(select(CLAIMED_USERS.c.user_id)).scalars())
        assert held.isdisjoint(taken) and held | taken == set(users)
