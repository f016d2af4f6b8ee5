"""Grouped notifications into the outbox (Alertmanager semantics): group_wait, group_interval, repeat_interval,
acknowledged groups, send_resolved per channel, silences, inhibition, the payload, delivery through a file sink,
and exactly one notification per group when checks run concurrently.

Policy: channels file and slack, group_wait 30 s, group_interval 5 min, repeat_interval 1 h, grouped by persona.
Rules also name e-mail, which is not configured, so no e-mail notification is ever queued.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store.database import Database
from store.repositories import outbox
from tests.escalation.support import POLICY, Clock, Plant, day, outbox_rows, rule, sent, service
from tools.escalation.service import EscalationService
from tools.notify.channels.file import FileNotifier
from tools.notify.delivery import deliver_due
from tools.notify.message import Notification

CHANNELS = ["file", "slack", "email"]
START = day(1)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def one_rule_firing(database: Database, clock: Clock | None = None, **policy: Any) -> EscalationService:
    """agency fires errors_high at START (error rate 3 over 4 users)."""
    Plant(database).rate("agency", 1, 3)
    return service(
        database, rule(notification_channels=CHANNELS), clock=clock, policy=replace(POLICY, **policy)
    )


AGENCY_FIRING = ("agency:errors_high:firing",)


def test_group_wait_delays_the_first_notification(database: Database) -> None:
    escalations = one_rule_firing(database)
    assert escalations.check(at=at(0)).notifications == 0
    assert escalations.check(at=at(29)).notifications == 0
    assert sent(database) == []
    assert escalations.check(at=at(30)).notifications == 2
    assert sent(database) == [("file", "firing", AGENCY_FIRING), ("slack", "firing", AGENCY_FIRING)]
    assert escalations.check(at=at(31)).notifications == 0


def test_an_alert_that_joins_during_group_wait_arrives_in_the_same_notification(database: Database) -> None:
    escalations = one_rule_firing(database)
    escalations.check(at=at(0))
    escalations.add_rule(rule("errors_very_high", threshold=2.0, notification_channels=CHANNELS))
    assert escalations.check(at=at(10)).fired
    assert escalations.check(at=at(30)).notifications == 2
    both = ("agency:errors_high:firing", "agency:errors_very_high:firing")
    assert sent(database) == [("file", "firing", both), ("slack", "firing", both)]


def test_alerts_of_one_persona_arrive_together_and_personas_apart(database: Database) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("podcast_network", 1, 3)
    escalations = service(
        database,
        rule(notification_channels=CHANNELS),
        rule("errors_very_high", threshold=2.0, notification_channels=["slack"]),
    )
    escalations.check(at=at(0))
    assert escalations.check(at=at(30)).notifications == 4  # (file, slack) × (agency, podcast_network)
    both = ("agency:errors_high:firing", "agency:errors_very_high:firing")
    assert sorted(sent(database)) == [
        ("file", "firing", AGENCY_FIRING),
        ("file", "firing", ("podcast_network:errors_high:firing",)),
        ("slack", "firing", both),
        (
            "slack",
            "firing",
            ("podcast_network:errors_high:firing", "podcast_network:errors_very_high:firing"),
        ),
    ]
    slack_agency = next(
        row["payload"]
        for row in outbox_rows(database)
        if row["channel"] == "slack" and row["payload"]["group_labels"] == {"persona": "agency"}
    )
    assert slack_agency["title"] == "[FIRING:2] Error spike: error_rate for agency above 1 (+1 more)"
    assert slack_agency["summary"].startswith("2 escalation(s) firing for persona=agency: ")
    assert slack_agency["severity"] == "high" and slack_agency["status"] == "firing"


def test_a_changed_group_is_resent_after_group_interval_not_before(database: Database) -> None:
    escalations = one_rule_firing(database)
    escalations.check(at=at(0))
    escalations.check(at=at(30))
    escalations.add_rule(rule("errors_very_high", threshold=2.0, notification_channels=CHANNELS))
    assert escalations.check(at=at(60)).fired  # a second alert joins the agency group
    assert escalations.check(at=at(329)).notifications == 0  # 299 s after the last notification
    assert escalations.check(at=at(330)).notifications == 2
    both = ("agency:errors_high:firing", "agency:errors_very_high:firing")
    assert sent(database) == [
        ("file", "firing", AGENCY_FIRING),
        ("slack", "firing", AGENCY_FIRING),
        ("file", "firing", both),
        ("slack", "firing", both),
    ]


def test_an_unchanged_group_is_repeated_after_repeat_interval_not_before(database: Database) -> None:
    escalations = one_rule_firing(database)
    escalations.check(at=at(0))
    escalations.check(at=at(30))
    for seconds in (300, 1800, 3629):
        assert escalations.check(at=at(seconds)).notifications == 0, seconds
    assert escalations.check(at=at(3630)).notifications == 2
    assert escalations.check(at=at(3631)).notifications == 0
    assert escalations.check(at=at(7229)).notifications == 0
    assert escalations.check(at=at(7230)).notifications == 2
    assert [row["created_at"] for row in outbox_rows(database)] == [at(30)] * 2 + [at(3630)] * 2 + [
        at(7230)
    ] * 2


def test_an_acknowledged_group_is_not_repeated_nor_resent(database: Database) -> None:
    clock = Clock(at(60))
    escalations = one_rule_firing(database, clock)
    [escalation] = escalations.check(at=at(0)).active
    escalations.check(at=at(30))
    escalations.acknowledge(escalation.escalation_id, "oncall@example.com")
    for seconds in (60, 330, 3630, 7230, 4 * 3600):
        assert escalations.check(at=at(seconds)).notifications == 0, seconds
    assert len(outbox_rows(database)) == 2


def test_resolved_notifications_only_for_send_resolved_channels(database: Database) -> None:
    clock = Clock(at(60))
    escalations = one_rule_firing(database, clock, send_resolved=frozenset({"slack"}))
    [escalation] = escalations.check(at=at(0)).active
    escalations.check(at=at(30))
    escalations.resolve(escalation.escalation_id, "user123", "fixed")
    assert escalations.check(at=at(60)).notifications == 0
    assert escalations.check(at=at(329)).notifications == 0  # group_interval applies to resolution too
    assert escalations.check(at=at(330)).notifications == 1
    assert escalations.check(at=at(4000)).notifications == 0  # resolved groups are not repeated
    assert sent(database) == [
        ("file", "firing", AGENCY_FIRING),
        ("slack", "firing", AGENCY_FIRING),
        ("slack", "resolved", ("agency:errors_high:resolved",)),
    ]
    resolved = outbox_rows(database)[-1]["payload"]
    assert resolved["title"] == "[RESOLVED] escalations for persona=agency"
    assert resolved["alerts"][0]["resolved_at"] == at(60).isoformat()


def test_a_group_whose_alert_went_away_during_group_wait_waits_again(database: Database) -> None:
    clock = Clock(at(10))
    escalations = one_rule_firing(database, clock)
    [escalation] = escalations.check(at=at(0)).active
    escalations.resolve(escalation.escalation_id, "user123")  # before group_wait: nobody was told
    assert escalations.check(at=at(10)).notifications == 0
    assert escalations.check(at=at(40)).notifications == 0
    escalations.add_rule(rule("errors_very_high", threshold=2.0, notification_channels=CHANNELS))
    assert escalations.check(at=at(3600)).fired  # a new alert in the same group, an hour later
    assert escalations.check(at=at(3600)).notifications == 0  # it waits its own group_wait
    assert escalations.check(at=at(3630)).notifications == 2
    assert sent(database) == [
        ("file", "firing", ("agency:errors_very_high:firing",)),
        ("slack", "firing", ("agency:errors_very_high:firing",)),
    ]


def test_a_repeat_does_not_carry_an_alert_whose_resolution_was_already_sent(database: Database) -> None:
    # podcast_network's group was notified first and then acknowledged, so it is never sent again; agency's
    # group announces errors_very_high's resolution once and then repeats errors_high alone.
    clock = Clock(at(45))
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("podcast_network", 1, 3)
    escalations = service(database, rule(notification_channels=CHANNELS), clock=clock)
    escalations.check(at=at(0))
    network = next(e for e in escalations.check(at=at(30)).active if e.labels["persona"] == "podcast_network")
    escalations.acknowledge(network.escalation_id, "oncall")
    escalations.add_rule(rule("errors_very_high", threshold=2.0, notification_channels=["slack"],
                              condition={"metric": "error_rate", "period_days": 1, "baseline": "absolute",
                                         "persona": "agency"}))  # fmt: skip
    [very_high] = [e for e in escalations.check(at=at(40)).active if e.rule_id == "errors_very_high"]
    escalations.resolve(very_high.escalation_id, "user123")
    assert escalations.check(at=at(330)).notifications == 1  # slack: the group changed (resolved alert)
    assert escalations.check(at=at(3930)).notifications == 2  # repeats for agency on file and slack
    slack_agency = [
        row["payload"]["alerts"]
        for row in outbox_rows(database)
        if row["channel"] == "slack" and row["payload"]["group_labels"] == {"persona": "agency"}
    ]
    assert [[f"{a['labels']['rule']}:{a['status']}" for a in alerts] for alerts in slack_agency] == [
        ["errors_high:firing"],
        ["errors_high:firing", "errors_very_high:resolved"],
        ["errors_high:firing"],
    ]


# ---- silences --------------------------------------------------------------------------------------------------

PERSONAS = ("agency", "brand_sponsor", "podcast_network", "solo_podcaster")


@pytest.mark.parametrize(
    ("matchers", "notified"),
    [
        ([{"label": "persona", "operator": "=", "value": "agency"}], set(PERSONAS) - {"agency"}),
        ([{"label": "persona", "operator": "!=", "value": "agency"}], {"agency"}),
        ([{"label": "persona", "operator": "=~", "value": "podcast.*|solo.*"}], {"agency", "brand_sponsor"}),
        ([{"label": "persona", "operator": "!~", "value": ".*sponsor"}], {"brand_sponsor"}),
        ([{"label": "persona", "operator": "=~", "value": "agen"}], set(PERSONAS)),  # regexes match whole values
        (
            [{"label": "rule", "operator": "=", "value": "errors_high"},
             {"label": "persona", "operator": "=", "value": "agency"}],
            {"brand_sponsor", "podcast_network", "solo_podcaster"},
        ),
        (
            [{"label": "rule", "operator": "=", "value": "other_rule"},
             {"label": "persona", "operator": "=", "value": "agency"}],
            set(PERSONAS),  # every matcher must match
        ),
    ],
)  # fmt: skip
def test_silence_matchers_mute_what_they_match(
    database: Database, matchers: list[dict[str, str]], notified: set[str]
) -> None:
    planter = Plant(database)
    for persona in PERSONAS:
        planter.rate(persona, 1, 3)
    escalations = service(database, rule(notification_channels=["file"]), clock=Clock(START))
    escalations.add_silence(
        matchers, ends_at=START + timedelta(hours=2), created_by="oncall", comment="deploying"
    )
    escalations.check(at=at(0))
    escalations.check(at=at(30))
    assert {row["payload"]["group_labels"]["persona"] for row in outbox_rows(database)} == notified
    # Silenced escalations still fire; only their notifications are muted.
    assert len(escalations.escalations(status="firing")) == 4


def test_a_silence_mutes_only_between_its_start_and_end(database: Database) -> None:
    clock = Clock(START - timedelta(hours=1))
    escalations = one_rule_firing(database, clock)
    agency = [{"label": "persona", "operator": "=", "value": "agency"}]
    later = escalations.add_silence(agency, starts_at=at(3600), ends_at=at(7200), created_by="oncall")
    over = escalations.add_silence(
        agency, starts_at=START - timedelta(hours=1), ends_at=at(20), created_by="oncall"
    )
    now = escalations.add_silence(agency, ends_at=at(600), created_by="oncall")  # starts at the clock
    assert now["starts_at"] == (START - timedelta(hours=1)).isoformat()
    clock.now = at(700)
    assert [s["silence_id"] for s in escalations.silences(active_only=True)] == []
    assert len(escalations.silences()) == 3 and {later["silence_id"], over["silence_id"]} < {
        s["silence_id"] for s in escalations.silences()
    }
    for seconds in (0, 30, 300, 599):
        assert escalations.check(at=at(seconds)).notifications == 0, seconds  # the third silence
    escalations.check(at=at(600))  # expired: the group starts its group_wait now
    assert escalations.check(at=at(630)).notifications == 2
    # The later silence mutes the repeat that would be due at 630 + 3600.
    assert escalations.check(at=at(4230)).notifications == 0
    expired = escalations.expire_silence(later["silence_id"])
    assert (
        expired["ends_at"] == at(3600).isoformat()
    )  # the clock (700) is before its start: ends at its start


def test_silence_input_is_validated(database: Database) -> None:
    from tools.escalation.model import EscalationInputError, EscalationNotFoundError

    escalations = service(database, clock=Clock(START))
    cases: list[tuple[Any, str]] = [
        ([], "matchers"),
        ([{"label": "persona", "operator": "==", "value": "agency"}], "matchers[0].operator"),
        ([{"label": "persona", "operator": "=~", "value": "("}], "matchers[0].value"),
        ([{"label": "persona", "value": 3}], "matchers[0]"),
        ([{"label": "persona", "value": "a", "extra": 1}], "matchers[0]"),
    ]
    for matchers, field in cases:
        with pytest.raises(EscalationInputError) as caught:
            escalations.add_silence(matchers, ends_at=at(60), created_by="oncall")
        assert caught.value.field == field
    with pytest.raises(EscalationInputError) as backwards:
        escalations.add_silence(
            [{"label": "persona", "value": "a"}], starts_at=at(60), ends_at=at(0), created_by="x"
        )
    assert backwards.value.field == "ends_at"
    with pytest.raises(EscalationInputError) as naive:
        escalations.add_silence(
            [{"label": "persona", "value": "a"}], ends_at=datetime(2026, 3, 3), created_by="x"
        )
    assert naive.value.field == "ends_at"  # the field is named (it was "at" before the review)
    with pytest.raises(EscalationNotFoundError):
        escalations.expire_silence("sil_missing")
    assert escalations.silences() == []


# ---- inhibition --------------------------------------------------------------------------------------------------


def test_a_critical_alert_inhibits_lower_severities_on_the_same_persona_and_metric_only(
    database: Database,
) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)  # error rate 3: both error rules fire
    planter.day("podcast_network", 1, [2, 2, 1, 1])  # 1.5: only the high error rule fires
    support_condition = {"metric": "support_incidents", "period_days": 1, "baseline": "absolute"}
    escalations = service(
        database,
        rule("errors_high", notification_channels=["file"]),
        rule("errors_critical", severity="critical", threshold=2.0, notification_channels=["file"]),
        rule("support_high", condition=support_condition, threshold=-1.0, notification_channels=["file"]),
    )
    result = escalations.check(at=at(0))
    assert len(result.fired) == 5  # inhibition mutes notifications, not escalations
    escalations.check(at=at(30))
    assert sorted(sent(database)) == [
        ("file", "firing", ("agency:errors_critical:firing", "agency:support_high:firing")),
        ("file", "firing", ("podcast_network:errors_high:firing", "podcast_network:support_high:firing")),
    ]
    agency = next(
        r["payload"] for r in outbox_rows(database) if r["payload"]["group_labels"]["persona"] == "agency"
    )
    assert agency["severity"] == "critical"


# ---- payload and delivery ---------------------------------------------------------------------------------------


def test_the_outbox_payload_round_trips_through_notification_from_dict(database: Database) -> None:
    escalations = one_rule_firing(database)
    [escalation] = escalations.check(at=at(0)).active
    escalations.check(at=at(30))
    rows = outbox_rows(database)
    assert [(r["event_type"], r["status"], r["attempts"], r["destination"]) for r in rows] == [
        ("escalation.group", "pending", 0, "file"),
        ("escalation.group", "pending", 0, "slack"),
    ]
    payload = rows[0]["payload"]
    notification = Notification.from_dict(payload)
    assert notification.as_dict() == payload
    assert (notification.status, notification.severity, notification.sent_at) == ("firing", "high", at(30))
    assert notification.group_labels == {"persona": "agency"}
    assert notification.title == "[FIRING:1] Error spike: error_rate for agency above 1"
    [line] = notification.alerts
    assert (line.escalation_id, line.fingerprint, line.status) == (
        escalation.escalation_id, escalation.fingerprint, "firing",
    )  # fmt: skip
    assert line.labels == {
        "rule": "errors_high", "persona": "agency", "metric": "error_rate", "type": "error_spike", "severity": "high",
    }  # fmt: skip
    assert [(e.metric, e.persona, e.value, e.n) for e in line.evidence] == [("error_rate", "agency", 3.0, 4)]
    assert line.opened_at == at(0) and line.resolved_at is None
    notified = [h for h in escalations.get(escalation.escalation_id).history if h["kind"] == "notified"]
    assert sorted(h["details"]["channel"] for h in notified) == ["file", "slack"]
    assert {h["details"]["message_id"] for h in notified} == {r["id"] for r in rows}


def test_deliver_due_writes_one_line_per_message_and_marks_them_delivered(
    database: Database, tmp_path: Path
) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("podcast_network", 1, 3)
    escalations = service(database, rule(notification_channels=CHANNELS))
    escalations.check(at=at(0))
    escalations.check(at=at(30))
    file_path, slack_path = tmp_path / "file.jsonl", tmp_path / "slack.jsonl"
    notifiers = {"file": FileNotifier(file_path), "slack": FileNotifier(slack_path, name="slack")}
    report = deliver_due(database, notifiers=notifiers, clock=lambda: at(31))
    assert (report.delivered, report.retrying, report.failed, report.errors) == (4, 0, 0, [])
    for path, channel in ((file_path, "file"), (slack_path, "slack")):
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert sorted(line["notification"]["group_labels"]["persona"] for line in lines) == [
            "agency", "podcast_network",
        ]  # fmt: skip
        assert {(line["channel"], line["recorded_at"]) for line in lines} == {(channel, at(31).isoformat())}
    with database.read() as connection:
        assert outbox.counts_by_status(connection) == {"delivered": 4}
    assert {row["delivered_at"] for row in outbox_rows(database)} == {at(31)}
    again = deliver_due(database, notifiers=notifiers, clock=lambda: at(32))
    assert again.delivered == 0 and len(file_path.read_text().splitlines()) == 2


# ---- concurrency -------------------------------------------------------------------------------------------------


def test_concurrent_checks_queue_exactly_one_notification_per_group(database: Database) -> None:
    planter = Plant(database)
    for persona in PERSONAS:
        planter.rate(persona, 1, 3)
    setup = service(
        database, rule(notification_channels=CHANNELS), policy=replace(POLICY, group_wait_seconds=0)
    )
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        escalations = EscalationService(database, clock=Clock(START), policy=setup.policy)
        try:
            barrier.wait()
            escalations.check(at=at(offset))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    rows = outbox_rows(database)
    assert len(rows) == 8  # 4 persona groups × (file, slack): each exactly once
    assert sorted((r["channel"], r["payload"]["group_labels"]["persona"]) for r in rows) == sorted(
        (channel, persona) for channel in ("file", "slack") for persona in PERSONAS
    )
    assert len(setup.escalations()) == 4  # one escalation per label set, never two
