"""Load: the real segment-analytics-python client in 8 spawned processes sends through `feedbackloop serve
--workers 2` (keys on, JSON access log) while the worker's jobs (escalation check, triage, delivery, experiment
refresh, scheduled retros) run in a loop and a sprint retro runs in a subprocess; on SQLite and on PostgreSQL.

Checked: every client queued all its events and reported no error; the store holds exactly the messageIds sent,
each once; the access log has no 5xx; the worker loop completed at least one pass without an error; the retro
completed. Reported: events/s (events stored over the senders' wall-clock span) and p50/p99 latency of
`/v1/batch` from the access log.

CI size: 5,000 events per process (40,000 per database). `make soak` runs the issue's 50,000 per process
(RELIABILITY_LOAD_EVENTS_PER_PROCESS=50000: 400,000 per database).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from tests.reliability.load_support import (
    clean_environment,
    create_ingest_key,
    feedbackloop_command,
    load_database,
    read_access_log,
    running_server,
    stop_group,
    stored_message_ids,
    write_figures,
)
from tests.reliability.segment_sender import SendPlan, expected_message_ids, send_events

SENDERS = 8
EVENTS_PER_PROCESS = int(os.environ.get("RELIABILITY_LOAD_EVENTS_PER_PROCESS", "5000"))
# Bounds: the senders get 5 ms per event plus two minutes (the 2-core CI machine does ~1,000+ events/s), the retro
# three minutes after the senders end.
SEND_DEADLINE_SECONDS = SENDERS * EVENTS_PER_PROCESS * 0.005 + 120
RETRO_DEADLINE_SECONDS = 180.0
# Between the worker's passes (a deployment's worker checks every 5 minutes; here every few seconds, so several
# checks, each holding the escalation lock and on SQLite the write lock, land inside the load).
WORKER_PAUSE_SECONDS = 2.0


class WorkerLoop(threading.Thread):
    """The worker's jobs (`Worker.run_once`: the check and its triage, delivery, experiment refresh, due retros),
    two seconds apart until stopped: what `feedbackloop worker` does on its intervals, much more often."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="worker-loop", daemon=True)
        self.database_url = database_url
        self.stop = threading.Event()
        self.pause_seconds = WORKER_PAUSE_SECONDS
        self.passes = 0
        self.escalations_evaluated = 0
        self.errors: list[str] = []

    def run(self) -> None:
        database = Database(self.database_url, upgrade=False)
        try:
            worker = Worker(database, Settings(database_url=self.database_url), notifiers={})
            worker.service.ensure_default_rules()
            while not self.stop.is_set():
                report = worker.run_once()
                self.errors.extend(report.errors)
                self.passes += 1
                self.escalations_evaluated += report.check.evaluated if report.check else 0
                self.stop.wait(self.pause_seconds)
        finally:
            database.dispose()

    def finish(self, timeout_seconds: float) -> None:
        """Stop after the pass in progress, waiting for at least one whole pass."""
        deadline = time.monotonic() + timeout_seconds
        while self.passes == 0 and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.stop.set()
        self.join(timeout=max(1.0, deadline - time.monotonic()))


def _start_retro(database_url: str, workdir: Path) -> subprocess.Popen[str]:
    now = datetime.now(UTC).replace(microsecond=0)
    command = feedbackloop_command(
        "retro", "run", "--kind", "sprint", "--start", (now.date() - timedelta(days=13)).isoformat(),
        "--end", now.isoformat(), "--format", "json",
    )  # fmt: skip
    env = clean_environment(database_url, tickets_jsonl_path=str(workdir / "backlog.jsonl"))
    return subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_first_events(database_url: str, run_id: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline and stored_message_ids(database_url, run_id)[0] == 0:
        time.sleep(0.5)


@pytest.mark.timeout(int(SEND_DEADLINE_SECONDS + RETRO_DEADLINE_SECONDS + 300))
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_eight_segment_clients_under_load_lose_and_double_nothing(kind: str, tmp_path: Path) -> None:
    run_id = f"load{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    phases: dict[str, float] = {}
    with load_database(kind, tmp_path) as database_url:
        key = create_ingest_key(database_url)
        worker_loop = WorkerLoop(database_url)
        retro: subprocess.Popen[str] | None = None
        with running_server(database_url, tmp_path, workers=2) as server:
            phases["server_healthy"] = time.monotonic() - began
            plans = [SendPlan(server.base_url, key, run_id, s, EVENTS_PER_PROCESS) for s in range(SENDERS)]
            try:
                with multiprocessing.get_context("spawn").Pool(SENDERS) as pool:
                    sending = pool.map_async(send_events, plans)
                    worker_loop.start()
                    _wait_for_first_events(database_url, run_id, timeout_seconds=60)
                    retro = _start_retro(database_url, tmp_path)  # starts while the clients are sending
                    senders: list[dict[str, Any]] = sending.get(timeout=SEND_DEADLINE_SECONDS)
                    phases["senders_done"] = time.monotonic() - began
                retro_out, retro_err = retro.communicate(timeout=RETRO_DEADLINE_SECONDS)
                phases["retro_done"] = time.monotonic() - began
                worker_loop.finish(timeout_seconds=120)
            finally:
                worker_loop.stop.set()
                if retro is not None:
                    stop_group(retro, grace_seconds=5)
        stored_rows, stored_ids = stored_message_ids(database_url, run_id)
    access = read_access_log(server.log_path)

    sent = sum(s["queued"] for s in senders)
    span_seconds = max(s["ended"] for s in senders) - min(s["started"] for s in senders)
    figures = {
        "database": kind, "senders": SENDERS, "events_per_sender": EVENTS_PER_PROCESS, "events_sent": sent,
        "events_stored": stored_rows, "distinct_message_ids_stored": len(stored_ids),
        "lost": len(expected_message_ids(run_id, SENDERS, EVENTS_PER_PROCESS) - stored_ids),
        "duplicates": stored_rows - len(stored_ids), "client_errors": sum(len(s["errors"]) for s in senders),
        "requests": sum(access.statuses.values()), "statuses": dict(access.statuses),
        "server_errors_5xx": access.server_errors, "seconds": round(span_seconds, 1),
        "events_per_second": round(stored_rows / span_seconds), "batch_requests": len(access.ingest_durations_ms),
        "batch_p50_ms": round(access.percentile_ms(0.50), 1), "batch_p99_ms": round(access.percentile_ms(0.99), 1),
        "worker_passes": worker_loop.passes, "worker_label_sets_evaluated": worker_loop.escalations_evaluated,
        "retro_exit_code": retro.returncode if retro else None,
        "phases_seconds": {name: round(at, 1) for name, at in phases.items()},
    }  # fmt: skip
    write_figures(f"load-{kind}-{EVENTS_PER_PROCESS}", figures)

    assert [s["errors"] for s in senders] == [[]] * SENDERS
    assert sent == SENDERS * EVENTS_PER_PROCESS
    assert stored_ids == expected_message_ids(run_id, SENDERS, EVENTS_PER_PROCESS)  # zero lost
    assert stored_rows == sent  # zero duplicates
    assert access.server_errors == 0, access.statuses
    assert len(access.ingest_durations_ms) >= sent // 100  # every upload of ≤ 100 events was logged
    assert worker_loop.passes >= 1 and worker_loop.errors == []
    assert retro is not None and retro.returncode == 0, retro_err[-3000:]
    assert json.loads(retro_out)["status"] == "completed"
