"""The seed's auto-escalation snippets run as written (only the import changed), on SQLite and PostgreSQL.

An error spike is planted for podcast_network (error rate 3 per active user this week against 1 in each of the
four weeks before), so the default error_spike rule opens an escalation for the snippet to print and resolve.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedbackloop import AutoEscalationSystem, EscalationRule, EscalationSeverity, EscalationType
from store.database import Database
from tools.escalation.model import EscalationInputError, EscalationStatus
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

NOW = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
BASE_WEEK = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1] * 4  # 40 users, mean 1.0
SPIKE_WEEK = [3, 2, 4, 3, 2, 3, 4, 3, 2, 4] * 4  # mean 3.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def plant_error_spike(database: Database) -> None:
    events: list[CanonicalEvent] = []

    def add(kind: str, name: str, user: str, at: datetime, **properties: Any) -> None:
        events.append(
            CanonicalEvent(f"seed-{len(events)}", kind, name, at, at, user_id=user, properties=properties)
        )

    for position in range(len(BASE_WEEK)):
        add("identify", "identify", f"pn-{position}", NOW - timedelta(days=400), persona="podcast_network")
    for week in range(5, 0, -1):
        start = NOW - timedelta(days=7 * week - 1)
        for position, errors in enumerate(SPIKE_WEEK if week == 1 else BASE_WEEK):
            add("track", "feature_used", f"pn-{position}", start, feature="reports")
            for k in range(errors):
                add(
                    "track",
                    "error_occurred",
                    f"pn-{position}",
                    start + timedelta(seconds=k + 1),
                    feature="reports",
                )
    EventIngestor(database, survey_triggers=False).ingest(events)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auto_escalation(database: Database, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", database.url)
    get_settings.cache_clear()
    plant_error_spike(database)
    yield AutoEscalationSystem(clock=clock)
    get_settings.cache_clear()


def test_seed_snippets_run_as_written(auto_escalation: Any, capsys: pytest.CaptureFixture[str]) -> None:
    async def snippet() -> Any:
        escalations = await auto_escalation.check_escalations(days=7)
        for escalation in escalations:
            print(f"Escalation: {escalation.title}")
            print(f"Severity: {escalation.severity.value}")
            print(f"Affected personas: {escalation.affected_personas}")
        await auto_escalation.resolve_escalation(
            escalation_id=escalation.escalation_id,
            resolved_by="user123",
            resolution_notes="Fixed in deployment v1.2.3",
        )
        rule = EscalationRule(
            rule_id="custom_rule",
            escalation_type=EscalationType.VALUE_DROP,
            severity=EscalationSeverity.HIGH,
            condition={"metric": "nps_score", "period_days": 7},
            threshold=0.0,
            comparison="less_than",
            action="notify_product_team",
            notification_channels=["email", "slack"],
        )
        auto_escalation.add_rule(rule)
        return escalations, escalation, rule

    escalations, escalation, rule = asyncio.run(snippet())
    assert [(e.rule_id, e.labels["persona"], e.status.value) for e in escalations] == [
        ("error_spike", "podcast_network", "pending")  # the default rule waits 60 minutes before firing
    ]
    assert capsys.readouterr().out == (
        "Escalation: Error spike: error_rate for podcast_network up 200% vs trailing 28 days\n"
        "Severity: critical\n"
        "Affected personas: ['podcast_network']\n"
    )
    [evidence] = escalation.evidence
    assert (evidence.value, evidence.baseline, evidence.n) == (pytest.approx(3.0), pytest.approx(1.0), 40)

    resolved = asyncio.run(auto_escalation.get_escalations(EscalationStatus.RESOLVED))
    assert [(e.escalation_id, e.resolved_by, e.resolution_notes, e.resolved_at) for e in resolved] == [
        (escalation.escalation_id, "user123", "Fixed in deployment v1.2.3", NOW)
    ]
    stored = {r.rule_id: r for r in auto_escalation.rules()}
    assert stored["custom_rule"] == rule
    assert sorted(stored) == sorted(
        [
            "custom_rule",
            "error_spike",
            "value_drop",
            "support_load_increase",
            "retention_drop",
            "ltv_degradation",
        ]
    )


def test_resolved_stays_quiet_and_a_replayed_check_uses_its_time(auto_escalation: Any, clock: Clock) -> None:
    async def scenario() -> tuple[Any, ...]:
        [escalation] = await auto_escalation.check_escalations(days=7)
        await auto_escalation.resolve_escalation(escalation.escalation_id, "user123", "Fixed in v1.2.3")
        clock.now = NOW + timedelta(hours=2)
        after_resolve = await auto_escalation.check_escalations(days=7)  # still spiking: no re-fire
        replay = await auto_escalation.check(days=7, at=NOW - timedelta(days=7))  # a week before: healthy
        return escalation, after_resolve, replay

    escalation, after_resolve, replay = asyncio.run(scenario())
    assert (
        escalation.type == EscalationType.ERROR_SPIKE and escalation.severity == EscalationSeverity.CRITICAL
    )
    assert after_resolve == []
    assert (replay.at, replay.active, replay.opened) == (NOW - timedelta(days=7), [], [])


def test_seed_add_rule_replaces_a_rule_with_the_same_id_and_refuses_bad_ones(auto_escalation: Any) -> None:
    base = {
        "rule_id": "custom_rule", "escalation_type": EscalationType.VALUE_DROP, "severity": EscalationSeverity.HIGH,
        "condition": {"metric": "nps_score", "period_days": 7}, "threshold": 0.0, "comparison": "less_than",
    }  # fmt: skip
    auto_escalation.add_rule(EscalationRule(**base))
    replaced = auto_escalation.add_rule(EscalationRule(**(base | {"threshold": -20.0})))
    assert replaced.threshold == -20.0
    assert [r.threshold for r in auto_escalation.rules() if r.rule_id == "custom_rule"] == [-20.0]
    with pytest.raises(EscalationInputError) as unknown:
        auto_escalation.add_rule(
            EscalationRule(**(base | {"rule_id": "x", "condition": {"metric": "happiness"}}))
        )
    assert unknown.value.field == "condition.metric"
    with pytest.raises(EscalationInputError) as bad:
        auto_escalation.add_rule(base | {"comparison": "lower"})
    assert bad.value.field == "comparison"
