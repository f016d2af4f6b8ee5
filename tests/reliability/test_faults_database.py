"""Database faults mid-ingest, with the real segment-analytics-python client sending to the app (keys on) in a
thread: nothing is lost, nothing is stored twice.

- SQLite locked: another connection holds an EXCLUSIVE lock for a few seconds while the client sends. Within the
  busy timeout the requests just wait; past it (the timeout shortened here to 0.5 s) the app answers 503 with
  Retry-After, which the client honours and then sends again.
- PostgreSQL restarted: a throwaway cluster the test creates (initdb and pg_ctl as the `postgres` user, a free
  loopback port) is stopped with `pg_ctl stop -m fast` while the client sends, left down for 2 s, and started
  again; the requests that meet the outage get 503 with Retry-After and are sent again.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import store.engine
from store.database import Database
from tests.reliability.load_support import (
    StatusRecorder,
    app_in_thread,
    cluster_unavailable_reason,
    stored_message_ids,
    throwaway_cluster,
    write_figures,
)
from tests.reliability.segment_sender import SendPlan, expected_message_ids, send_events

WRITE_KEY = "reliability-faults-key"
EVENTS = 1200
PACE_SECONDS = 0.004  # ~5 s of sending, so the fault lands in the middle of it
LOCK_SECONDS = 3.0
DOWN_SECONDS = 2.0  # PostgreSQL stopped this long before it starts again
SEND_DEADLINE_SECONDS = 120.0


def _send_with_fault(
    database: Database, *, inject: Callable[[], None], upload_size: int
) -> tuple[dict[str, Any], StatusRecorder, int, str]:
    """Send EVENTS from one Segment client; once the first events are stored, run `inject` (the fault). Returns
    the client's report, the statuses the app answered, how many events were stored before the fault, and the
    run id (the messageId prefix)."""
    run_id = f"fault{uuid.uuid4().hex[:8]}"
    with app_in_thread(database, WRITE_KEY) as (base_url, recorder):
        plan = SendPlan(
            base_url, WRITE_KEY, run_id, 0, EVENTS, upload_size=upload_size, pace_seconds=PACE_SECONDS
        )
        outcome: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: outcome.update(send_events(plan)), daemon=True)
        sender.start()
        deadline = time.monotonic() + 30
        while stored_message_ids(database.url, run_id)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stored_before_fault = stored_message_ids(database.url, run_id)[0]
        inject()
        sender.join(timeout=SEND_DEADLINE_SECONDS)
        assert not sender.is_alive(), f"the client did not finish within {SEND_DEADLINE_SECONDS:.0f} s"
    return outcome, recorder, stored_before_fault, run_id


def _check_nothing_lost_or_doubled(
    database: Database, outcome: dict[str, Any], run_id: str
) -> dict[str, int]:
    rows, ids = stored_message_ids(database.url, run_id)
    expected = expected_message_ids(run_id, 1, EVENTS)
    assert outcome["errors"] == [] and outcome["queued"] == EVENTS
    assert ids == expected  # nothing lost
    assert rows == EVENTS  # nothing doubled
    return {"events_sent": outcome["queued"], "events_stored": rows, "lost": len(expected - ids),
            "duplicates": rows - len(ids), "client_errors": len(outcome["errors"])}  # fmt: skip


def _hold_exclusive_lock(path: Path, seconds: float) -> None:
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        holder.execute("COMMIT")
    finally:
        holder.close()


@pytest.mark.parametrize(
    "busy_timeout_ms", [30_000, 500], ids=["lock-within-busy-timeout", "lock-past-busy-timeout"]
)
def test_sqlite_locked_mid_ingest_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy_timeout_ms: int
) -> None:
    monkeypatch.setattr(store.engine, "SQLITE_BUSY_TIMEOUT_MS", busy_timeout_ms)
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}")
    try:
        outcome, recorder, before, run_id = _send_with_fault(
            database, inject=lambda: _hold_exclusive_lock(path, LOCK_SECONDS), upload_size=50
        )
        figures = _check_nothing_lost_or_doubled(database, outcome, run_id)
    finally:
        database.dispose()
    answered_503 = recorder.statuses[503]
    write_figures(f"fault-sqlite-locked-{busy_timeout_ms}ms", {
        **figures, "database": "sqlite", "busy_timeout_ms": busy_timeout_ms, "lock_seconds": LOCK_SECONDS,
        "faults_injected": 1, "stored_before_fault": before, "statuses": dict(recorder.statuses),
    })  # fmt: skip
    assert 0 < before < EVENTS  # the lock came mid-ingest
    assert set(recorder.statuses) <= {200, 503}
    if busy_timeout_ms > LOCK_SECONDS * 1000:
        assert answered_503 == 0  # the requests waited for the lock
    else:
        assert answered_503 >= 1  # they met the lock, were told to come back, and did


def test_postgres_restarted_mid_ingest_loses_and_doubles_nothing() -> None:
    reason = cluster_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no throwaway PostgreSQL cluster: {reason}")
    with throwaway_cluster() as cluster:
        database = Database(cluster.url)
        restarted_in: list[float] = []

        def restart() -> None:
            started = time.monotonic()
            cluster.pg_ctl("-m", "fast", "stop")  # ends every session, in the middle of their transactions
            time.sleep(DOWN_SECONDS)
            cluster.start()
            restarted_in.append(time.monotonic() - started)

        try:
            outcome, recorder, before, run_id = _send_with_fault(database, inject=restart, upload_size=10)
            figures = _check_nothing_lost_or_doubled(database, outcome, run_id)
        finally:
            database.dispose()
    write_figures("fault-postgres-restart", {
        **figures, "database": "postgresql (throwaway cluster)", "faults_injected": 1,
        "down_seconds": round(restarted_in[0], 2), "stored_before_fault": before,
        "statuses": dict(recorder.statuses),
    })  # fmt: skip
    assert 0 < before < EVENTS  # the restart came mid-ingest
    assert set(recorder.statuses) <= {200, 503}
    assert recorder.statuses[503] >= 1  # requests met the outage, were told to come back, and did


def test_only_a_database_that_is_away_or_busy_is_answered_503(tmp_path: Path) -> None:
    """The 503 (retry) is for conditions that pass; a missing table or a broken constraint stays a 500."""
    from sqlalchemy import create_engine, exc, text

    from store.engine import database_unavailable

    engine = create_engine(f"sqlite:///{tmp_path}/classify.db", connect_args={"timeout": 0.05})
    holder = sqlite3.connect(tmp_path / "classify.db", isolation_level=None)
    raised: dict[str, Exception] = {}
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        for name, statement in (
            ("missing table", "SELECT * FROM nowhere"),
            ("duplicate key", "INSERT INTO t VALUES (1)"),
        ):
            with pytest.raises(exc.DBAPIError) as caught, engine.begin() as connection:
                connection.execute(text(statement))
            raised[name] = caught.value
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(exc.OperationalError) as locked, engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
        raised["locked"] = locked.value
    finally:
        holder.close()
        engine.dispose()
    assert {name: database_unavailable(error) for name, error in raised.items()} == {
        "missing table": False, "duplicate key": False, "locked": True,
    }  # fmt: skip
