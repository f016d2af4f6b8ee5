"""The worker killed with SIGKILL in the middle of its jobs (check, triage, delivery), several times at different
moments, then run again: escalations, outbox messages and notifications written are exactly those of an
uninterrupted run over the same data; nothing lost, nothing doubled; on SQLite and PostgreSQL.

The killed worker is a process of its own running `Worker.run_once` (what `feedbackloop worker --once` runs) at a
fixed moment, so the killed runs, the next run and the uninterrupted reference all check the same instant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from store.database import Database
from tests.reliability.load_support import ROOT, write_figures
from tests.reliability.worker_kill_support import KILLED_WORKER, final_pass, plant, state_of

KILL_FRACTIONS = (0.05, 0.2, 0.4)  # of the uninterrupted run's duration, after the killed worker is ready
READY_WITHIN_SECONDS = 120.0


@contextmanager
def sibling_database(database: Database, directory: Path) -> Iterator[Database]:
    """An empty database beside `database`: another SQLite file, or another PostgreSQL schema (dropped after)."""
    if database.dialect == "sqlite":
        sibling = Database(f"sqlite:///{directory}/reference.db")
        yield sibling
        sibling.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = database.url.split("?")[0]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sibling = Database(f"{base}?options=-csearch_path%3D{schema}")
    try:
        yield sibling
    finally:
        sibling.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _kill_mid_run(database_url: str, directory: Path, after_seconds: float) -> str:
    """Start the worker, SIGKILL it `after_seconds` after it is ready; how it ended ("killed" or "finished")."""
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, database_url, str(directory)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + READY_WITHIN_SECONDS
        line = process.stdout.readline()  # blocks until "ready" (or EOF when the process died)
        assert line.strip() == "ready" and time.monotonic() < deadline, f"the worker did not start: {line!r}"
        time.sleep(after_seconds)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        return "killed" if process.returncode == -signal.SIGKILL else "finished"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def test_a_worker_killed_mid_evaluation_loses_and_doubles_nothing(database: Database, tmp_path: Path) -> None:
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    killed_dir.mkdir()
    reference_dir.mkdir()
    with sibling_database(database, tmp_path) as reference:
        plant(reference, reference_dir)
        started = time.monotonic()
        final_pass(reference, reference_dir)  # the uninterrupted run
        run_seconds = time.monotonic() - started
        expected = state_of(reference, reference_dir)

    plant(database, killed_dir)
    endings, after_each_kill = [], []
    for fraction in KILL_FRACTIONS:
        endings.append(_kill_mid_run(database.url, killed_dir, run_seconds * fraction))
        partial = state_of(database, killed_dir)
        after_each_kill.append(
            {name: sum(partial[name].values()) for name in ("escalations", "notifications")}
        )
    final_pass(database, killed_dir)
    actual = state_of(database, killed_dir)

    write_figures(f"fault-worker-sigkill-{database.dialect}", {
        "database": database.dialect, "faults_injected": endings.count("killed"), "kill_points_seconds":
        [round(run_seconds * f, 2) for f in KILL_FRACTIONS], "endings": endings,
        "uninterrupted_run_seconds": round(run_seconds, 2), "escalations": sum(expected["escalations"].values()),
        "after_each_kill": after_each_kill,
        "notifications_expected": sum(expected["notifications"].values()),
        "notifications_written": sum(actual["notifications"].values()),
        "lost": sum((expected["escalations"] - actual["escalations"]).values())
        + sum((expected["notifications"] - actual["notifications"]).values()),
        "duplicates": sum((actual["escalations"] - expected["escalations"]).values())
        + sum((actual["notifications"] - expected["notifications"]).values()),
    })  # fmt: skip
    assert endings.count("killed") >= 2  # the kills landed while the worker was working
    assert sum(expected["escalations"].values()) >= 30 and sum(expected["notifications"].values()) >= 4
    assert actual == expected
