"""An escalation reaches Slack through the outbox, surviving a 500 and a 429 with Retry-After (both databases).

The whole path: events → check (rule fires) → notification queued in the check's transaction → deliver_due →
SlackNotifier → local HTTP server answering 500, then 429 (Retry-After: 120), then 200 "ok".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from store.database import Database
from store.models import OutboxRow
from tests.notify.conftest import LocalHTTPServer, Reply
from tools.escalation.notifications import NotificationPolicy
from tools.escalation.service import EscalationService
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.notify.channels.slack import SlackNotifier
from tools.notify.delivery import deliver_due

T = datetime(2026, 4, 1, 12, tzinfo=UTC)


def _event(number: int, user: str, name: str, at: datetime, **properties: object) -> CanonicalEvent:
    kind = "identify" if name == "identify" else "track"
    return CanonicalEvent(f"m-{number}", kind, name, at, at, user_id=user, properties=dict(properties))


def _plant(database: Database) -> None:
    events = [_event(i, f"u{i}", "identify", T - timedelta(days=6), persona="agency") for i in range(6)]
    events += [
        _event(100 + i, f"u{i}", "task_failed", T - timedelta(days=2), task="export") for i in range(5)
    ]
    events += [_event(200, "u5", "task_completed", T - timedelta(days=2), task="export")]
    EventIngestor(database).ingest(events)


def test_an_escalation_reaches_slack_after_a_500_and_a_429(
    database: Database, http_server: LocalHTTPServer
) -> None:
    _plant(database)
    policy = NotificationPolicy(channels=frozenset({"slack"}), group_wait_seconds=30)
    service = EscalationService(database, policy=policy)
    service.add_rule({
        "rule_id": "tasks_failing", "escalation_type": "custom", "severity": "high", "threshold": 0.5,
        "condition": {"metric": "task_completion_rate", "period_days": 7, "baseline": "absolute"},
        "comparison": "less_than", "min_sample": 5, "notification_channels": ["slack"],
    })  # fmt: skip
    fired = service.check(at=T)
    assert len(fired.fired) == 1 and fired.notifications == 0  # group_wait: nothing sent in the first 30 s
    queued = service.check(at=T + timedelta(seconds=31))
    assert queued.notifications == 1

    http_server.script(Reply(500, "oops"), Reply(429, "slow down", {"Retry-After": "120"}), Reply(200, "ok"))
    slack = {"slack": SlackNotifier(http_server.url("/services/T000/B000/XXXX"))}
    moments = [T + timedelta(seconds=40), T + timedelta(seconds=71), T + timedelta(seconds=192)]
    reports = [deliver_due(database, notifiers=slack, clock=lambda at=at: at) for at in moments]
    assert [(r.delivered, r.retrying, r.failed) for r in reports] == [(0, 1, 0), (0, 1, 0), (1, 0, 0)]
    with database.read() as connection:
        [row] = connection.execute(select(OutboxRow.__table__)).mappings().all()
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 3, 200)
    # Retry-After (120 s) beat the 60 s backoff after the 429: the third attempt was not due before T+191 s.
    assert len(http_server.received) == 3
    message = http_server.received[-1].json()
    text = json.dumps(message)
    assert "task_completion_rate for agency below 0.5" in text  # the title
    assert "task_completion_rate for agency: 0.1667, n = 6" in text  # 1 completed of 6 attempts: the evidence
    assert message["blocks"][0]["type"] == "header"
