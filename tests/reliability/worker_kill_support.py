"""What the worker-kill test plants, how its worker is set up, and the state it compares.

The data: the synthetic product (500 users, 40 days, a deployment that multiplies errors) with the five default
rules and eight always-true error-rate rules over 1–8 days, so one check evaluates ~65 label sets, fires most
of them and queues one notification per persona group (file channel, no group wait): a check that takes seconds,
long enough to be killed in the middle.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from feedbackloop.settings import Settings
from feedbackloop.worker import Worker
from store.database import Database
from tests.escalation.support import rule
from tools.events.ingest import EventIngestor
from tools.notify.delivery import CLAIM_LEASE
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events

CHECK_AT = datetime(2026, 6, 1, tzinfo=UTC)
# The final pass delivers after the lease of a message a killed worker had claimed has run out.
DELIVER_AT = CHECK_AT + CLAIM_LEASE + timedelta(seconds=1)
SYNTHETIC = SyntheticConfig(
    users=500, days=40, seed=5, end=CHECK_AT, deployments=(PlantedDeployment(day=26, error_multiplier=6.0),)
)
ALWAYS_TRUE_RULES = 8


def worker_settings(database_url: str, directory: Path) -> Settings:
    return Settings(
        database_url=database_url,
        notification_file=directory / "notifications.jsonl",
        alert_group_wait_seconds=0,
        tickets_jsonl_path=directory / "backlog.jsonl",
    )


def plant(database: Database, directory: Path) -> None:
    EventIngestor(database).ingest_stream(generate_events(SYNTHETIC))
    worker = Worker(database, worker_settings(database.url, directory))
    worker.service.ensure_default_rules()
    for days in range(1, ALWAYS_TRUE_RULES + 1):
        condition = {"metric": "error_rate", "period_days": days, "baseline": "absolute"}
        worker.service.add_rule(
            rule(f"errors_{days}d", condition=condition, threshold=-1.0, notification_channels=["file"],
                 severity="high" if days % 2 else "medium")
        )  # fmt: skip


def final_pass(database: Database, directory: Path) -> None:
    """The next run after the kills: the worker's jobs at CHECK_AT, then delivery once claims have lapsed."""
    worker = Worker(database, worker_settings(database.url, directory))
    report = worker.run_once(now=CHECK_AT)
    assert report.errors == [], report.errors
    worker.deliver(now=DELIVER_AT)


# The killed worker: a process of its own, told when to start by "ready" on stdout (imports done).
KILLED_WORKER = """
import sys
from pathlib import Path
from store.database import Database
from feedbackloop.worker import Worker
from tests.reliability.worker_kill_support import CHECK_AT, worker_settings

database_url, directory = sys.argv[1:]
worker = Worker(Database(database_url, upgrade=False), worker_settings(database_url, Path(directory)))
print("ready", flush=True)
worker.run_once(now=CHECK_AT)
print("done", flush=True)
"""


def state_of(database: Database, directory: Path) -> dict[str, Any]:
    """What must match an uninterrupted run: escalation instances and escalations (by fingerprint), outbox
    messages, and the notifications written (group key and status, with multiplicity)."""
    with database.read() as connection:
        instances = sorted(
            (row.fingerprint, row.rule_id, row.state)
            for row in connection.execute(
                text("SELECT fingerprint, rule_id, state FROM escalation_instances")
            )
        )
        escalations = Counter(
            (row.fingerprint, row.status)
            for row in connection.execute(text("SELECT fingerprint, status FROM escalations"))
        )
        outbox = Counter(
            (row.channel, row.event_type, row.status)
            for row in connection.execute(text("SELECT channel, event_type, status FROM outbox"))
        )
    path = directory / "notifications.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    notifications = Counter(
        (json.loads(line)["notification"]["group_key"], json.loads(line)["notification"]["status"])
        for line in lines
    )
    return {
        "instances": instances,
        "escalations": escalations,
        "outbox": outbox,
        "notifications": notifications,
    }
