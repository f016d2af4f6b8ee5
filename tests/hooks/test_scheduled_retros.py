"""Scheduled deployment retros on SQLite and PostgreSQL: the hook's escalation check attributes changes to the
deployment, the retro waits for its bake window, the worker runs a due one exactly once even with two workers
racing, a failing one is recorded as failed without stopping the worker, and hook_deliveries claims once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.retro.runner import RetroStateError
from feedbackloop.deploy_hooks import DeployHooks, parse_deployment
from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from store.repositories import hook_deliveries
from store.repositories import retros as retro_sql
from tests.hooks.support import deployment_events, retro_rows
from tests.retro_doors.support import END, load_product

DEPLOYED_AT = datetime(2026, 5, 30, 12, tzinfo=UTC)


class Clock:
    """The one time every part of a test sees; tests move it forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings_for(database: Database, tmp_path: Path) -> Settings:
    return Settings(database_url=database.url, tickets_jsonl_path=tmp_path / "backlog.jsonl")


def hooks_on(database: Database, tmp_path: Path, clock: Callable[[], datetime]) -> DeployHooks:
    return DeployHooks(database, settings_for(database, tmp_path), clock=clock)


def record(hooks: DeployHooks, version: str, deployed_at: datetime, **extra: object) -> dict[str, object]:
    body = {"service": "sponsor-api", "version": version, "deployed_at": deployed_at.isoformat(), **extra}
    return hooks.record(parse_deployment(body, now=hooks.clock()), source="deploy")


def test_the_check_after_a_deployment_attributes_the_regression_to_it(
    database: Database, tmp_path: Path
) -> None:
    """The synthetic product: podcast_network's report errors are ten times as frequent since day 22; a deployment
    the day before the check is among the escalations' related deployments."""
    load_product(database)
    hooks = hooks_on(database, tmp_path, Clock(END))
    outcome = record(hooks, "v2.0.0", END - timedelta(hours=30))
    check = outcome["escalation_check"]
    assert isinstance(check, dict) and check["status"] == "ran"
    assert check["evaluated"] > 0 and check["opened"] >= 1
    assert check["attributed_escalations"], check
    assert [e["properties"]["version"] for e in deployment_events(database)][-1] == "v2.0.0"


def test_the_worker_runs_a_scheduled_retro_once_its_bake_window_has_passed(
    database: Database, tmp_path: Path
) -> None:
    clock = Clock(DEPLOYED_AT + timedelta(minutes=5))
    hooks = hooks_on(database, tmp_path, clock)
    outcome = record(hooks, "v2.3.0", DEPLOYED_AT)
    retro_id = outcome["retro"]["id"]  # type: ignore[index]
    worker = Worker(database, settings_for(database, tmp_path), notifiers={}, clock=clock)

    assert worker.run_once().retros_run == 0  # 24 hours have not passed
    with pytest.raises(RetroStateError, match="scheduled to run after"):
        worker.retros().resume(retro_id)
    assert [row["status"] for row in retro_rows(database)] == ["scheduled"]

    clock.now = DEPLOYED_AT + timedelta(hours=24, minutes=1)
    report = worker.run_once()
    assert report.retros_run == 1 and not report.errors
    [row] = retro_rows(database)
    assert row["status"] == "completed", row["error"]
    assert row["result"]["window"]["start"] == DEPLOYED_AT.isoformat()
    assert worker.run_once().retros_run == 0  # completed: never again


def test_two_workers_racing_run_a_due_retro_exactly_once(database: Database, tmp_path: Path) -> None:
    clock = Clock(DEPLOYED_AT + timedelta(minutes=5))
    record(hooks_on(database, tmp_path, clock), "v2.3.0", DEPLOYED_AT)
    clock.now = DEPLOYED_AT + timedelta(days=2)
    workers = [
        Worker(database, settings_for(database, tmp_path), notifiers={}, clock=clock) for _ in range(2)
    ]
    start = threading.Barrier(2)
    ran: list[int] = []

    def race(worker: Worker) -> None:
        start.wait()
        ran.append(worker.run_due_retros())

    threads = [threading.Thread(target=race, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(ran) == [0, 1]
    [row] = retro_rows(database)
    assert row["status"] == "completed", row["error"]


def test_a_failing_scheduled_retro_is_recorded_and_the_worker_goes_on(
    database: Database, tmp_path: Path
) -> None:
    """A scheduled retro whose version has no deployment event and no deployed_at cannot find its window."""
    clock = Clock(DEPLOYED_AT + timedelta(days=2))
    with database.write() as connection:
        retro_sql.create_retro_once(connection, {
            "id": "retro-broken", "kind": "deployment", "sprint_id": None, "version": "v0.0.0",
            "window_start": DEPLOYED_AT, "window_end": DEPLOYED_AT + timedelta(days=1), "status": "scheduled",
            "request": {"kind": "deployment", "version": "v0.0.0", "bake_hours": 24}, "result": None, "error": None,
            "run_after": DEPLOYED_AT + timedelta(days=1), "created_at": DEPLOYED_AT, "updated_at": DEPLOYED_AT,
        })  # fmt: skip
    record(hooks_on(database, tmp_path, clock), "v2.3.0", DEPLOYED_AT)
    worker = Worker(database, settings_for(database, tmp_path), notifiers={}, clock=clock)
    report = worker.run_once()
    assert report.retros_run == 2 and not report.errors
    statuses = {row["id"]: (row["status"], row["error"]) for row in retro_rows(database)}
    assert statuses["retro-broken"][0] == "failed"
    assert "version" in (statuses["retro-broken"][1] or "")
    assert [status for retro_id, (status, _) in statuses.items() if retro_id != "retro-broken"] == [
        "completed"
    ]


def test_a_delivery_is_claimed_once_and_an_abandoned_claim_is_taken_over(database: Database) -> None:
    t0 = datetime(2026, 5, 30, tzinfo=UTC)
    with database.write() as connection:
        assert hook_deliveries.claim_delivery(connection, "slack", "d-1", t0) is True
        assert hook_deliveries.claim_delivery(connection, "slack", "d-1", t0) is False
        assert hook_deliveries.claim_delivery(connection, "github", "d-1", t0) is True  # per source
    later = t0 + timedelta(minutes=11)
    with database.write() as connection:  # no outcome after 11 minutes: its process died
        assert hook_deliveries.claim_delivery(
            connection, "slack", "d-1", later, stale_after=timedelta(minutes=10)
        )
        hook_deliveries.record_outcome(connection, "slack", "d-1", {"answered": True})
    with database.write() as connection:  # an outcome is final
        much_later = later + timedelta(days=1)
        assert not hook_deliveries.claim_delivery(
            connection, "slack", "d-1", much_later, stale_after=timedelta(0)
        )
        hook_deliveries.release_delivery(connection, "slack", "d-1")  # only claims without an outcome go
        row = hook_deliveries.delivery(connection, "slack", "d-1")
        assert row is not None and row["outcome"] == {"answered": True}
        hook_deliveries.release_delivery(connection, "github", "d-1")
        assert hook_deliveries.delivery(connection, "github", "d-1") is None


def test_a_retro_whose_background_run_never_started_is_resumed_by_the_worker(
    database: Database, tmp_path: Path
) -> None:
    """An API instance accepted an immediate hook (the retro claimed: running) and restarted before its background
    run began: nobody holds the run. After ORPHAN_AFTER the worker resumes it, once; a fresh one is left alone."""
    from agents.retro.runner import ORPHAN_AFTER

    clock = Clock(DEPLOYED_AT + timedelta(hours=25))
    hooks = hooks_on(database, tmp_path, clock)
    outcome = record(hooks, "v2.3.0", DEPLOYED_AT, immediate=True)  # claimed here, and never run
    retro = outcome["retro"]
    assert isinstance(retro, dict) and retro["status"] == "running"
    worker = Worker(database, settings_for(database, tmp_path), notifiers={}, clock=clock)
    assert worker.resume_orphaned_retros() == 0  # it may still be about to run
    clock.now += ORPHAN_AFTER + timedelta(minutes=1)
    assert worker.resume_orphaned_retros() == 1
    [row] = retro_rows(database)
    assert row["status"] == "completed", row["error"]
    assert worker.resume_orphaned_retros() == 0
