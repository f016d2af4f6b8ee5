"""Escalation records: the JSON shape, the fingerprint, history, acknowledge/resolve rules, evidence against a
baseline, related deployments that stay, rule description templates, and check input validation."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from scipy import stats

from store.database import Database
from store.repositories import escalations as repo
from tests.escalation.support import Clock, Plant, day, instance_states, rule, service
from tools.escalation.model import (
    EscalationInputError,
    EscalationNotFoundError,
    EscalationStateError,
    EscalationStatus,
)
from tools.escalation.service import fingerprint
from tools.experiments.service import ExperimentService

AGENCY = {"rule": "errors_high", "persona": "agency", "metric": "error_rate"}


def test_fingerprint_is_a_stable_hash_of_the_sorted_labels() -> None:
    reordered = {"metric": "error_rate", "persona": "agency", "rule": "errors_high"}
    assert fingerprint(AGENCY) == fingerprint(reordered)
    expected = hashlib.sha256(json.dumps(sorted(AGENCY.items())).encode()).hexdigest()[:32]
    assert fingerprint(AGENCY) == expected == "b98a28db2e22d79ec711090d01d64dfd"
    assert fingerprint(AGENCY | {"persona": "agency2"}) != fingerprint(AGENCY)
    assert fingerprint(AGENCY | {"team": "growth"}) != fingerprint(AGENCY)


def test_the_json_shape_of_an_escalation(database: Database) -> None:
    Plant(database).rate("agency", 1, 3)
    [escalation] = service(database, rule()).check(at=day(1)).active
    data = json.loads(json.dumps(escalation.as_dict()))
    brief = {"escalation_id", "fingerprint", "type", "severity", "status", "title", "description", "labels",
             "affected_personas", "evidence", "opened_at", "resolved_at"}  # fmt: skip
    assert brief <= set(data)
    assert data["escalation_id"].startswith("esc_") and len(data["escalation_id"]) == 24
    assert {k: data[k] for k in ("fingerprint", "type", "severity", "status", "labels", "affected_personas")} == {
        "fingerprint": fingerprint(AGENCY), "type": "error_spike", "severity": "high", "status": "firing",
        "labels": AGENCY, "affected_personas": ["agency"],
    }  # fmt: skip
    assert data["evidence"] == [
        {"metric": "error_rate", "persona": "agency", "value": 3.0, "baseline": None, "change": None,
         "p_value": None, "n": 4},
    ]  # fmt: skip
    assert (data["opened_at"], data["resolved_at"]) == (day(1).isoformat(), None)
    assert data["title"] == "Error spike: error_rate for agency above 1"
    assert escalation.type == escalation.escalation_type


def test_history_through_pending_fired_notified_acknowledged_resolved(database: Database) -> None:
    Plant(database).rate("agency", 1, 3)
    clock = Clock()
    escalations = service(database, rule(for_minutes=60), clock=clock)
    [pending] = escalations.check(at=day(1)).active
    with pytest.raises(EscalationStateError) as not_firing:
        escalations.acknowledge(pending.escalation_id, "oncall")
    assert not_firing.value.field == "status" and "this one is pending" in str(not_firing.value)
    escalations.check(at=day(1, minutes=60))
    escalations.check(at=day(1, minutes=60, seconds=30))
    clock.now = day(1, minutes=90)
    acknowledged = escalations.acknowledge(pending.escalation_id, " oncall@example.com ")
    assert (acknowledged.status, acknowledged.acknowledged_by, acknowledged.acknowledged_at) == (
        EscalationStatus.ACKNOWLEDGED, "oncall@example.com", day(1, minutes=90),
    )  # fmt: skip
    with pytest.raises(EscalationStateError):
        escalations.acknowledge(pending.escalation_id, "oncall")  # only a firing one
    assert escalations.escalations(status="acknowledged") == [acknowledged]
    assert escalations.escalations(status="firing") == []
    clock.now = day(1, minutes=120)
    resolved = escalations.resolve(pending.escalation_id, "user123", "Fixed in deployment v1.2.3")
    with pytest.raises(EscalationStateError) as twice:
        escalations.resolve(pending.escalation_id, "user123")
    assert twice.value.field == "status" and "already resolved" in str(twice.value)
    with pytest.raises(EscalationStateError):
        escalations.acknowledge(pending.escalation_id, "oncall")
    assert [(h["kind"], h["at"], h["actor"]) for h in resolved.history] == [
        ("pending", day(1).isoformat(), None),
        ("fired", day(1, minutes=60).isoformat(), None),
        ("notified", day(1, minutes=60, seconds=30).isoformat(), None),
        ("notified", day(1, minutes=60, seconds=30).isoformat(), None),
        ("acknowledged", day(1, minutes=90).isoformat(), "oncall@example.com"),
        ("resolved", day(1, minutes=120).isoformat(), "user123"),
    ]
    assert sorted(h["details"]["channel"] for h in resolved.history if h["kind"] == "notified") == [
        "file",
        "slack",
    ]
    assert resolved.history[-1]["details"] == {"notes": "Fixed in deployment v1.2.3"}
    assert (resolved.firing_at, resolved.resolved_at) == (day(1, minutes=60), day(1, minutes=120))
    assert escalations.get(pending.escalation_id) == resolved


def test_an_acknowledged_escalation_still_resolves_automatically_on_recovery(database: Database) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("agency", 2, 0)
    escalations = service(database, rule(), clock=Clock(day(1, hours=1)))
    [escalation] = escalations.check(at=day(1)).active
    escalations.acknowledge(escalation.escalation_id, "oncall")
    result = escalations.check(at=day(2))
    assert result.resolved == [escalation.escalation_id] and result.active == []
    after = escalations.get(escalation.escalation_id)
    assert (after.status, after.resolved_by, after.resolved_at, after.acknowledged_by) == (
        EscalationStatus.RESOLVED, "auto", day(2), "oncall",
    )  # fmt: skip
    assert after.resolution_notes == "recovered: the condition no longer holds (recovery threshold met)"
    assert [h["kind"] for h in after.history] == ["fired", "acknowledged", "resolved"]


def test_unknown_ids_and_bad_input_are_refused(database: Database) -> None:
    escalations = service(database)
    for call in (
        lambda: escalations.get("esc_missing"),
        lambda: escalations.acknowledge("esc_missing", "oncall"),
        lambda: escalations.resolve("esc_missing", "user123"),
    ):
        with pytest.raises(EscalationNotFoundError) as missing:
            call()
        assert (missing.value.kind, missing.value.key) == ("escalation", "esc_missing")
    with pytest.raises(EscalationInputError) as status:
        escalations.escalations(status="open")
    assert status.value.field == "status"
    with pytest.raises(EscalationInputError) as actor:
        escalations.resolve("esc_missing", "  ")
    assert actor.value.field == "resolved_by"
    with pytest.raises(EscalationInputError) as notes:
        escalations.resolve("esc_missing", "user123", "x" * 10_001)
    assert notes.value.field == "resolution_notes"
    with pytest.raises(EscalationInputError) as days:
        escalations.check(at=day(1), days=0)
    assert days.value.field == "days"
    with pytest.raises(EscalationInputError) as naive:
        escalations.check(at=datetime(2026, 3, 3))
    assert naive.value.field == "at"


def test_evidence_against_a_previous_period_baseline(database: Database) -> None:
    planter = Plant(database)
    planter.day("agency", 1, [0, 1, 1, 2])
    planter.day("agency", 2, [2, 3, 3, 4])
    relative = rule(
        "errors_rising", comparison="significant_rise", threshold=50.0,
        condition={"metric": "errors", "period_days": 1, "baseline": "previous_period"},
    )  # fmt: skip
    [escalation] = service(database, relative).check(at=day(2)).active
    [evidence] = escalation.evidence
    assert (evidence.metric, evidence.persona, evidence.value, evidence.baseline, evidence.n) == (
        "error_rate", "agency", 3.0, 1.0, 4,
    )  # fmt: skip
    assert evidence.change == pytest.approx(2.0)
    expected_p = stats.ttest_ind([2, 3, 3, 4], [0, 1, 1, 2], equal_var=False).pvalue
    assert evidence.p_value == pytest.approx(expected_p, rel=1e-6)
    assert escalation.title == "Error spike: error_rate for agency up 200% vs previous period"
    assert (
        f"against 1 in the previous period (n = 4): +200.0%, p = {expected_p:.2g}." in escalation.description
    )
    assert escalation.labels == {"rule": "errors_rising", "persona": "agency", "metric": "error_rate"}


def test_related_deployments_appear_and_stay_after_the_window_moves_on(database: Database) -> None:
    planter = Plant(database)
    for index in range(1, 6):
        planter.rate("agency", index, 3)
    planter.rate("podcast_network", 5, 3)
    planter.deployment("v1.2.3", day(0, hours=12))
    escalations = service(database, rule())
    [first] = escalations.check(at=day(1)).active
    assert [(d["version"], d["service"], d["deployed_at"]) for d in first.related["deployments"]] == [
        ("v1.2.3", "api", day(0, hours=12).isoformat())
    ]
    assert (
        f"Deployments in or just before the period: v1.2.3 at {day(0, hours=12).isoformat()}."
        in first.description
    )
    for index in (2, 3, 4):
        escalations.check(at=day(index))
    planter.deployment("v1.2.4", day(4, hours=1))
    result = escalations.check(at=day(5))  # the window [day 4, day 5) no longer reaches v1.2.3
    current = {e.labels["persona"]: e for e in result.active}
    assert current["agency"].escalation_id == first.escalation_id
    assert [d["version"] for d in current["agency"].related["deployments"]] == ["v1.2.3", "v1.2.4"]
    assert "v1.2.3 at" in current["agency"].description and "v1.2.4 at" in current["agency"].description
    assert [d["version"] for d in current["podcast_network"].related["deployments"]] == ["v1.2.4"]
    assert current["agency"].related["experiments"] == []


def test_a_rule_description_template_is_rendered_each_evaluation(database: Database) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("agency", 2, 5)
    template = "{{ persona }}: {{ value_text }} errors per user (n = {{ n }}); page {{ action }}"
    escalations = service(database, rule(description=template, action="page_on_call"))
    [first] = escalations.check(at=day(1)).active
    assert first.description == "agency: 3 errors per user (n = 4); page page_on_call"
    [second] = escalations.check(at=day(2)).active
    assert second.escalation_id == first.escalation_id
    assert second.description == "agency: 5 errors per user (n = 4); page page_on_call"


def test_a_broken_description_template_is_refused_and_never_breaks_a_check(database: Database) -> None:
    with pytest.raises(EscalationInputError) as syntax:
        rule(description="{{ persona ")
    assert syntax.value.field == "description"
    Plant(database).rate("agency", 1, 3)
    # Valid syntax, but a variable that does not exist and an attribute the sandbox refuses: the check still
    # runs, and the escalation gets the default description plus what went wrong with the rule's own.
    escalations = service(
        database,
        rule(description="{{ persona }} at {{ valeu }}"),
        rule("sandboxed", description="{{ n.__class__.__mro__ }}"),
        rule("divided", description="{{ n / 0 }}"),
    )
    result = escalations.check(at=day(1))
    assert {e.rule_id for e in result.active} == {"errors_high", "sandboxed", "divided"}
    for escalation in result.active:
        assert escalation.description.startswith("error_rate for agency was 3 over the 1 days")
        assert "description template failed" in escalation.description


def test_check_results_list_what_changed(database: Database) -> None:
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("podcast_network", 1, 3)
    planter.rate("agency", 2, 0)
    planter.rate("podcast_network", 2, 3)
    escalations = service(database, rule())
    first = escalations.check(at=day(1))
    assert sorted(first.opened) == sorted(first.fired) == sorted(e.escalation_id for e in first.active)
    assert (first.at, first.evaluated, first.resolved) == (day(1), 2, [])
    agency = next(e for e in first.active if e.labels["persona"] == "agency")
    second = escalations.check(at=day(2) + timedelta(minutes=1))
    assert (second.opened, second.fired, second.resolved) == ([], [], [agency.escalation_id])
    assert [e.labels["persona"] for e in second.active] == ["podcast_network"]


def test_a_resolve_during_a_check_is_not_undone_by_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check reads the alert instances, a person resolves the escalation, the check writes: the check must not
    put back the instance it read (firing), which would later auto-resolve the escalation over the person's."""
    planter = Plant(database)
    planter.rate("agency", 1, 3)
    planter.rate("agency", 2, 3)
    planter.rate("agency", 3, 0)
    escalations = service(database, rule(), clock=Clock(day(1, hours=1)))
    [escalation] = escalations.check(at=day(1)).active
    read, resolved = threading.Event(), threading.Event()
    original = repo.instance_rows

    def instance_rows_then_wait(connection: Any) -> Any:
        rows = original(connection)
        read.set()
        resolved.wait(timeout=0.5)  # a resolve that has to wait for the check cannot finish in between
        return rows

    monkeypatch.setattr(repo, "instance_rows", instance_rows_then_wait)
    checker = threading.Thread(target=lambda: escalations.check(at=day(1, hours=2)))
    checker.start()
    assert read.wait(timeout=10)
    escalations.resolve(escalation.escalation_id, "user123", "fixed by hand")
    resolved.set()
    checker.join(timeout=30)
    monkeypatch.setattr(repo, "instance_rows", original)

    assert instance_states(database)[("errors_high", "agency")] == ("inactive", True)
    assert escalations.check(at=day(2)).active == []  # still true: stays quiet
    escalations.check(at=day(3))  # recovered
    after = escalations.get(escalation.escalation_id)
    assert (after.status, after.resolved_by, after.resolution_notes) == (
        EscalationStatus.RESOLVED, "user123", "fixed by hand",
    )  # fmt: skip
    assert [h["kind"] for h in after.history].count("resolved") == 1


def test_related_experiments_are_listed_once_with_their_latest_status(database: Database) -> None:
    planter = Plant(database)
    for index in range(1, 5):
        planter.rate("agency", index, 3)
    experiment_clock = Clock(day(0, hours=3))
    experiments = ExperimentService(database, clock=experiment_clock)
    experiments.create(
        {"key": "guided_onboarding", "name": "Guided onboarding", "type": "onboarding",
         "variants": [{"name": "control", "weight": 0.5}, {"name": "guided", "weight": 0.5}],
         "primary_metrics": ["onboarding_completion"]}
    )  # fmt: skip
    experiments.start("guided_onboarding")
    escalations = service(database, rule())
    [first] = escalations.check(at=day(1)).active
    assert first.related["experiments"] == [
        {"key": "guided_onboarding", "status": "running", "started_at": day(0, hours=3).isoformat()}
    ]
    assert "Experiments running in the period: guided_onboarding (running)." in first.description
    experiment_clock.now = day(3, hours=12)
    experiments.stop("guided_onboarding")
    for index in (2, 3, 4):
        [current] = escalations.check(at=day(index)).active
    assert current.escalation_id == first.escalation_id
    assert current.related["experiments"] == [
        {"key": "guided_onboarding", "status": "stopped", "started_at": day(0, hours=3).isoformat()}
    ]
