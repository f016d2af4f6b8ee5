"""What the escalation tests share: a settable clock, planted input series, small custom rules and store reads.

Time is laid out in days from T0: the value a check sees at `day(i)` is what was planted for day i, because a
rule with `period_days=1` reads [day(i) − 1 day, day(i)) and `plant` puts day i's events at day(i − 1) + 6 h.
Checks up to six hours after day(i) therefore still see day i's values, which lets notification tests move the
clock by seconds and minutes without the window changing under them.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from store.database import Database
from store.models import EscalationInstanceRow, OutboxRow
from tools.escalation.model import Escalation, EscalationRule
from tools.escalation.notifications import NotificationPolicy
from tools.escalation.service import EscalationService
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

T0 = datetime(2026, 3, 2, tzinfo=UTC)
PLANT_OFFSET = timedelta(hours=6)
POLICY = NotificationPolicy(
    channels=frozenset({"file", "slack"}),
    group_wait_seconds=30,
    group_interval_seconds=300,
    repeat_interval_seconds=3600,
)


def day(index: float, **delta: float) -> datetime:
    """The evaluation time that sees day `index`'s planted values, moved by `delta` (seconds=…, minutes=…)."""
    return T0 + timedelta(days=index) + timedelta(**delta)


class Clock:
    """The service's injectable clock: tests set it by hand, nothing sleeps."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Plant:
    """Input series as events: per persona and day, one user per entry with that many error_occurred events.

    Users get their persona from an identify call a year before T0 (outside every window), and one feature_used
    event on the day they are planted, so each planted user is active (the error_rate denominator) that day.
    """

    def __init__(self, database: Database) -> None:
        self.ingestor = EventIngestor(database, survey_triggers=False)
        self._prefix = uuid.uuid4().hex[:8]
        self._ids = itertools.count()
        self._identified: set[str] = set()

    def _id(self) -> str:
        return f"t-{self._prefix}-{next(self._ids)}"

    def _track(self, user_id: str | None, name: str, at: datetime, **properties: Any) -> CanonicalEvent:
        anonymous = None if user_id else "deploy-bot"
        return CanonicalEvent(
            self._id(), "track", name, at, at, user_id=user_id, anonymous_id=anonymous, properties=properties
        )

    def _identify(self, user_id: str, persona: str) -> list[CanonicalEvent]:
        if user_id in self._identified:
            return []
        self._identified.add(user_id)
        at = T0 - timedelta(days=400)
        return [CanonicalEvent(self._id(), "identify", "identify", at, at, user_id=user_id,
                               properties={"persona": persona})]  # fmt: skip

    def errors_at(self, persona: str, at: datetime, errors: Sequence[int], *, user_prefix: str = "") -> None:
        """One active user per entry of `errors` at `at`, each with that many errors (user ids reused per
        persona and position, so the same users come back day after day)."""
        events: list[CanonicalEvent] = []
        for position, count in enumerate(errors):
            user = f"{persona}{user_prefix}-{position}"
            events += self._identify(user, persona)
            events.append(self._track(user, "feature_used", at, feature="reports"))
            events += [
                self._track(user, "error_occurred", at + timedelta(seconds=k + 1), feature="reports")
                for k in range(count)
            ]
        self.ingestor.ingest(events)

    def day(self, persona: str, index: int, errors: Sequence[int], *, user_prefix: str = "") -> None:
        """Day `index` of a persona: seen by checks at day(index) up to six hours later."""
        self.errors_at(persona, day(index - 1) + PLANT_OFFSET, errors, user_prefix=user_prefix)

    def rate(self, persona: str, index: int, value: int, users: int = 4) -> None:
        """Day `index` with error_rate = `value` over `users` active users."""
        self.day(persona, index, [value] * users)

    def deployment(self, version: str, at: datetime) -> None:
        self.ingestor.ingest([self._track(None, "deployment", at, version=version, service="api")])


def rule(rule_id: str = "errors_high", **overrides: Any) -> EscalationRule:
    """A fast custom rule: error_rate over one day above 1 error per active user, at least 3 users."""
    values: dict[str, Any] = {
        "rule_id": rule_id, "escalation_type": "error_spike", "severity": "high",
        "condition": {"metric": "error_rate", "period_days": 1, "baseline": "absolute"},
        "threshold": 1.0, "comparison": "greater_than", "min_sample": 3,
        "notification_channels": ["file", "slack"],
    }  # fmt: skip
    return EscalationRule(**(values | overrides))


def service(
    database: Database,
    *rules: EscalationRule,
    clock: Clock | None = None,
    policy: NotificationPolicy | None = None,
) -> EscalationService:
    """A service holding exactly `rules` (no default rules)."""
    escalation_service = EscalationService(database, clock=clock or Clock(), policy=policy or POLICY)
    for each in rules:
        escalation_service.add_rule(each)
    return escalation_service


def active_set(escalations: Iterable[Escalation]) -> set[tuple[str, str, str, str]]:
    """The firing set as promtool shows it: (rule, persona, status, severity) of every active escalation."""
    return {(e.labels["rule"], e.labels["persona"], e.status.value, e.severity.value) for e in escalations}


def instance_states(database: Database) -> dict[tuple[str, str], tuple[str, bool]]:
    """(rule, persona) → (state, suppressed) of every stored alert instance."""
    with database.read() as connection:
        rows = connection.execute(select(EscalationInstanceRow.__table__)).mappings()
        return {
            (row["labels"]["rule"], row["labels"]["persona"]): (row["state"], row["suppressed"])
            for row in rows
        }


def outbox_rows(database: Database) -> list[dict[str, Any]]:
    """Queued notifications, oldest first."""
    with database.read() as connection:
        statement = select(OutboxRow.__table__).order_by(
            OutboxRow.created_at, OutboxRow.channel, OutboxRow.id
        )
        return [dict(row) for row in connection.execute(statement).mappings()]


def sent(database: Database) -> list[tuple[str, str, tuple[str, ...]]]:
    """(channel, status, sorted persona:rule:status of its alerts) of every queued notification, oldest first."""
    return [
        (
            row["channel"],
            row["payload"]["status"],
            tuple(
                sorted(
                    f"{a['labels']['persona']}:{a['labels']['rule']}:{a['status']}"
                    for a in row["payload"]["alerts"]
                )
            ),
        )
        for row in outbox_rows(database)
    ]
