"""The store and the EventIngestor on SQLite and PostgreSQL: schema, dedupe, users, atomicity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from store.database import Database
from store.migrate import current_revision, head_revision
from store.models import Base, EventRow, UserRow
from store.repositories import events as events_repository
from tests.helpers import store_snapshot
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def event(
    message_id: str,
    name: str = "report_generated",
    *,
    user: str | None = "u1",
    minutes: int = 0,
    type_: str = "track",
    properties: dict[str, object] | None = None,
) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=message_id,
        type=type_,
        name=name if type_ == "track" else type_,
        timestamp=T0 + timedelta(minutes=minutes),
        received_at=T0 + timedelta(minutes=minutes, seconds=2),
        user_id=user,
        anonymous_id=None if user else "anon",
        properties=properties or {},
        context={"library": {"name": "test"}},
    )


def test_fresh_database_is_migrated_to_head_and_matches_the_models(database: Database) -> None:
    assert current_revision(database.engine) == head_revision()
    assert {"users", "events", "metric_observations", "alembic_version"} <= set(
        inspect(database.engine).get_table_names()
    )
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    # Upgrading again is a no-op.
    Database(database.url).dispose()
    assert current_revision(database.engine) == head_revision()


def test_indexes_for_the_planned_queries_exist(database: Database) -> None:
    inspector = inspect(database.engine)
    event_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("events")}
    assert {("name", "timestamp"), ("user_id", "timestamp")} <= event_indexes
    observation_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("metric_observations")}
    assert ("persona", "observed_at") in observation_indexes


def test_ingest_dedupes_on_message_id_within_and_across_batches(database: Database) -> None:
    ingestor = EventIngestor(database)
    first = ingestor.ingest([event("m1"), event("m2", minutes=1), event("m1")])
    assert (first.accepted, first.duplicates) == (2, 1)
    again = ingestor.ingest([event("m1"), event("m2", minutes=1), event("m3", minutes=2)])
    assert (again.accepted, again.duplicates) == (1, 2)
    with database.read() as connection:
        stored = connection.execute(select(EventRow.message_id).order_by(EventRow.message_id)).scalars().all()
    assert stored == ["m1", "m2", "m3"]


def test_timestamps_and_json_round_trip(database: Database) -> None:
    EventIngestor(database).ingest(
        [event("m1", properties={"report_id": "r-1", "nested": {"ok": True}, "ü": "✓"})]
    )
    with database.read() as connection:
        row = connection.execute(select(EventRow.timestamp, EventRow.properties, EventRow.context)).one()
    assert row.timestamp == T0 and row.timestamp.tzinfo is not None
    assert row.properties == {"report_id": "r-1", "nested": {"ok": True}, "ü": "✓"}
    assert row.context == {"library": {"name": "test"}}


def test_identify_sets_persona_and_merges_traits(database: Database) -> None:
    ingestor = EventIngestor(database)
    ingestor.ingest(
        [
            event("e1", minutes=5),
            event("i1", type_="identify", properties={"persona": "agency", "plan": "free"}),
        ]
    )
    ingestor.ingest([event("i2", type_="identify", minutes=60, properties={"plan": "pro"})])
    ingestor.ingest([event("e0", minutes=-30)])
    with database.read() as connection:
        user = connection.execute(
            select(UserRow.persona, UserRow.traits, UserRow.first_seen, UserRow.last_seen)
        ).one()
    assert user.persona == "agency"  # the second identify said nothing about persona: kept
    assert user.traits == {"persona": "agency", "plan": "pro"}
    assert user.first_seen == T0 - timedelta(minutes=30)
    assert user.last_seen == T0 + timedelta(minutes=60)


def test_persona_rules_and_unassigned(database: Database) -> None:
    ingestor = EventIngestor(database)
    ingestor.ingest(
        [
            event("a", user="net", type_="identify", properties={"account_type": "network"}),
            event("b", user="nobody", type_="identify", properties={"email": "x@example.test"}),
            event("c", user="silent"),
            event("d", user=None),
        ]
    )
    with database.read() as connection:
        personas = dict(connection.execute(select(UserRow.id, UserRow.persona)).all())
    assert personas == {"net": "podcast_network", "nobody": "unassigned", "silent": "unassigned"}


def test_a_failing_batch_writes_nothing(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    ingestor = EventIngestor(database)
    ingestor.ingest([event("before")])
    before = store_snapshot(database)

    def broken_upsert(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("tools.events.ingest.upsert_users", broken_upsert)
    with pytest.raises(RuntimeError, match="disk full"):
        ingestor.ingest([event("after-1"), event("after-2", user="u2")])
    assert store_snapshot(database) == before


def test_bulk_stream_chunks_and_reports_progress(database: Database) -> None:
    seen: list[int] = []
    events = [event(f"bulk-{i}", user=f"u{i % 7}", minutes=i) for i in range(2_345)]
    summary = EventIngestor(database).ingest_stream(
        events + events[:100], chunk_events=1000, on_progress=seen.append
    )
    assert (summary.accepted, summary.duplicates) == (2_345, 100)
    assert seen == [1000, 1000, 445]
    with database.read() as connection:
        assert events_repository.count_events(connection) == 2_345
        assert connection.execute(text("SELECT COUNT(*) FROM users")).scalar_one() == 7


def test_naive_datetimes_never_reach_the_store(database: Database) -> None:
    with database.session() as session, pytest.raises(Exception, match="naive datetime"):
        session.add(
            UserRow(
                id="x",
                persona="agency",
                traits={},
                first_seen=datetime(2026, 1, 1),
                last_seen=datetime(2026, 1, 1),
            )
        )
        session.flush()


def test_postgresql_plans_each_prepared_statement_for_its_parameters(database: Database) -> None:
    """Every pooled PostgreSQL connection uses custom plans: a generic plan made while a table was small (a seq
    scan) would otherwise outlive the table's growth until an ANALYZE (store/engine.py). SQLite has no plan
    cache setting; its connections are unaffected."""
    # Two transactions in a row: the setting is the session's, still there after the first one's rollback.
    for _ in range(2):
        with database.read() as connection:
            if database.dialect == "postgresql":
                assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
            else:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
