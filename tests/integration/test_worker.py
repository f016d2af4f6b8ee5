"""The worker on SQLite and PostgreSQL: one run checks and delivers, a held lock skips the check, concurrent
workers never notify twice, the loop stops when asked, and SIGTERM ends a `feedbackloop worker` process with 0.

The planted data: four `agency` users with two errors each the day before the check, and a rule that fires when
agency's error_rate is above 0.5 (min sample 3), notifying the file channel.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from feedbackloop.cli import app as cli
from feedbackloop.settings import Settings, get_settings
from feedbackloop.worker import Worker, check_lock, sqlite_lock_path
from store.database import Database
from store.models import OutboxRow
from tools.escalation.service import EscalationService
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

runner = CliRunner()
T0 = datetime(2026, 3, 10, tzinfo=UTC)
RULE = {
    "rule_id": "agency_errors", "escalation_type": "error_spike", "severity": "high",
    "condition": {"metric": "error_rate", "period_days": 7, "baseline": "absolute", "persona": "agency"},
    "threshold": 0.5, "recovery_threshold": 0.2, "comparison": "greater_than", "min_sample": 3,
    "notification_channels": ["file"],
}  # fmt: skip


def plant(database: Database, at: datetime, *, healthy_at: datetime | None = None) -> None:
    """The rule's data around `at`; with `healthy_at`, every user is active without errors then."""
    events = []
    for index in range(4):
        user = f"agency-{index}"
        identified = at - timedelta(days=90)
        events.append(CanonicalEvent(f"id-{user}", "identify", "identify", identified, identified, user_id=user,
                                     properties={"persona": "agency"}))  # fmt: skip
        for number in range(2):
            moment = at - timedelta(days=1, hours=number)
            events.append(CanonicalEvent(f"err-{user}-{number}", "track", "error_occurred", moment, moment,
                                         user_id=user, properties={"error_type": "report_failed"}))  # fmt: skip
        if healthy_at is not None:
            events.append(CanonicalEvent(f"ok-{user}", "track", "report_generated", healthy_at, healthy_at,
                                         user_id=user, properties={"report_id": f"r-{user}"}))  # fmt: skip
    EventIngestor(database).ingest(events)
    service = EscalationService(database)
    service.ensure_default_rules()
    service.add_rule(RULE)


def lines(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


def outbox_rows(database: Database) -> list[Any]:
    with database.read() as connection:
        return list(connection.execute(select(OutboxRow.channel, OutboxRow.status, OutboxRow.payload)))


def settings_for(database: Database, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database.url,
        notification_file=tmp_path / "notifications.jsonl",
        alert_group_wait_seconds=0,
    )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read from the environment by the CLI, fresh for this test and forgotten afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_once_checks_and_delivers_to_the_file_channel(
    database: Database, tmp_path: Path, environment: pytest.MonkeyPatch
) -> None:
    plant(database, datetime.now(UTC))
    sink = tmp_path / "notifications.jsonl"
    environment.setenv("FEEDBACKLOOP_NOTIFICATION_FILE", str(sink))
    environment.setenv("FEEDBACKLOOP_ALERT_GROUP_WAIT_SECONDS", "0")
    result = runner.invoke(cli, ["worker", "--once", "--database-url", database.url])
    assert result.exit_code == 0, result.output
    [line] = lines(sink)
    notification = line["notification"]
    assert (line["channel"], notification["status"], notification["severity"]) == ("file", "firing", "high")
    [alert] = notification["alerts"]
    assert alert["labels"]["persona"] == "agency" and alert["labels"]["rule"] == "agency_errors"
    assert [(e["value"], e["n"]) for e in alert["evidence"]] == [(2.0, 4)]
    assert [(r.channel, r.status) for r in outbox_rows(database)] == [("file", "delivered")]

    again = runner.invoke(cli, ["worker", "--once", "--database-url", database.url])
    assert again.exit_code == 0, again.output
    assert len(lines(sink)) == 1  # still firing, nothing new to say before the repeat interval


def test_run_once_at_injected_times_fires_then_resolves(database: Database, tmp_path: Path) -> None:
    plant(database, T0, healthy_at=T0 + timedelta(days=7))
    settings = settings_for(database, tmp_path)
    worker = Worker(database, settings, clock=lambda: T0)
    first = worker.run_once(T0)
    assert first.errors == [] and first.check is not None and first.delivery is not None
    assert len(first.check.fired) == 1 and first.check.notifications == 1 and first.delivery.delivered == 1
    quiet = worker.run_once(T0 + timedelta(minutes=15))
    assert quiet.check is not None and quiet.check.notifications == 0 and quiet.delivery is not None
    assert quiet.delivery.delivered == 0
    recovered = worker.run_once(T0 + timedelta(days=7, hours=1))
    assert recovered.check is not None and recovered.check.resolved == first.check.fired
    assert settings.notification_file is not None
    assert [line["notification"]["status"] for line in lines(settings.notification_file)] == [
        "firing",
        "resolved",
    ]


def test_a_held_lock_skips_the_check_but_not_delivery(database: Database, tmp_path: Path) -> None:
    plant(database, T0)
    worker = Worker(database, settings_for(database, tmp_path))
    with check_lock(database) as acquired:  # another worker is checking
        assert acquired
        skipped = worker.run_once(T0)
    assert skipped.check is None and skipped.check_skipped and skipped.errors == []
    assert skipped.delivery is not None and skipped.delivery.delivered == 0
    ran = worker.run_once(T0)
    assert ran.check is not None and len(ran.check.fired) == 1 and not ran.check_skipped
    if database.dialect == "sqlite":
        lock = sqlite_lock_path(database.url)
        assert lock == Path(database.url.removeprefix("sqlite:///") + ".worker.lock") and lock.exists()


def test_concurrent_workers_never_notify_twice(database: Database, tmp_path: Path) -> None:
    plant(database, datetime.now(UTC))
    settings = settings_for(database, tmp_path)
    workers = 4
    start = threading.Barrier(workers)
    failures: list[BaseException] = []
    skipped: list[bool] = []

    def work() -> None:
        own = Database(database.url)  # each worker with its own engine and pool, like separate processes
        try:
            worker = Worker(own, settings)
            for _ in range(3):
                start.wait(timeout=30)
                report = worker.run_once()
                assert report.errors == [], report.errors
                skipped.append(report.check_skipped)
        except BaseException as error:
            failures.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and len(skipped) == 3 * workers
    assert settings.notification_file is not None
    assert [line["notification"]["status"] for line in lines(settings.notification_file)] == ["firing"]
    assert [(r.channel, r.status) for r in outbox_rows(database)] == [("file", "delivered")]
    with database.read() as connection:
        assert connection.execute(select(func.count()).select_from(OutboxRow)).scalar() == 1


def test_the_loop_checks_delivers_and_stops_when_asked(database: Database, tmp_path: Path) -> None:
    plant(database, datetime.now(UTC))
    settings = settings_for(database, tmp_path)
    worker = Worker(database, settings, check_minutes=60, deliver_seconds=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        assert settings.notification_file is not None
        while not lines(settings.notification_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(lines(settings.notification_file)) == 1  # checked at once, delivered right after
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_sigterm_stops_a_worker_process_promptly(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FEEDBACKLOOP_")}
    environment |= {"FEEDBACKLOOP_DATABASE_URL": f"sqlite:///{tmp_path}/worker.db", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-c",
        "from feedbackloop.cli import main; main()",
        "worker",
        "--deliver-seconds",
        "0.2",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment, stderr=subprocess.PIPE, text=True)
    output: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [output.put(line) for line in iter(process.stderr.readline, "")])  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any("escalation check at" in line for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(output.get(timeout=0.5))
            except queue.Empty:
                assert process.poll() is None, "".join(seen)
        assert any("worker started" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - sent < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
    while not output.empty():
        seen.append(output.get())
    log = "".join(seen)
    assert "SIGTERM received: finishing the current job, then stopping" in log and "worker stopped" in log, (
        log
    )


def test_an_unusable_webhook_secret_is_refused_at_start(
    database: Database, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("FEEDBACKLOOP_WEBHOOK_SECRET", "whsec_***not base64***")
    result = runner.invoke(cli, ["worker", "--once", "--database-url", database.url])
    assert result.exit_code == 2, result.output
    assert "invalid configuration: the webhook secret must be base64" in result.output
