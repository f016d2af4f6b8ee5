"""The deterministic triage: context and evidence ids, correlation (grouping and the probable deployment among
several), routing, and the rules triage's output passing its own grounding check; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from store.database import Database
from tests.escalation.support import Plant, day, rule, service
from tools.escalation.triage.grounding import check_draft
from tools.escalation.triage.model import EscalationFacts, Owner, Route, TriageSettings
from tools.escalation.triage.routing import route
from tools.escalation.triage.service import plan_triage, rules_result

CHECK_AT = day(7, hours=3)


def _quiet_week_then_spike(plant: Plant, persona: str, *, spike: int = 3) -> None:
    for index in range(-7, 7):  # two quiet weeks: the onset fit compares the week with the one before
        plant.rate(persona, index, 0)
    plant.rate(persona, 7, spike)


def test_the_deployment_closest_before_the_change_is_the_probable_cause(database: Database) -> None:
    plant = Plant(database)
    _quiet_week_then_spike(plant, "podcast_network")
    plant.deployment("v1.1.0", day(3))  # more than 48 h before the change: out of the lookback
    plant.deployment("v1.2.0", day(5, hours=1))  # within 48 h, but an earlier one
    plant.deployment("v1.3.0", day(6, hours=2))  # the last deployment before the change: the cause
    plant.deployment("v1.4.0", day(7, hours=1))  # after the change started: cannot have caused it
    service(database, rule()).check(at=CHECK_AT)

    plan = plan_triage(database, None, TriageSettings(), CHECK_AT)

    [incident] = plan.incidents
    [facts] = plan.context.escalations
    assert facts.change_point_source == "metric series"
    assert (facts.change_from, facts.change_point) == (day(6), day(7))  # the onset day
    cause = incident.causes[facts.escalation_id]
    assert cause is not None and plan.context.deployment_ids[cause] == "v1.3.0"
    assert sorted(plan.context.deployment_ids.values()) == ["v1.2.0", "v1.3.0", "v1.4.0"]
    triage = rules_result(incident, plan.context, TriageSettings())
    top = triage.draft.probable_causes[0]
    assert top.title == "deployment v1.3.0" and top.confidence == "high"
    assert top.evidence_ids == [cause, facts.evidence_id]
    assert "v1.3.0" in triage.draft.summary and facts.evidence_id in triage.draft.summary
    assert check_draft(triage.draft, triage.evidence).ok
    data = triage.as_dict()
    assert data["triage"] == "rules" and data["owner"] == {"team": "on-call", "channel": "#incidents"}
    assert {e["id"] for e in data["evidence"]} >= {cause, facts.evidence_id}


def test_same_persona_escalations_are_one_incident_and_unrelated_ones_are_not(database: Database) -> None:
    plant = Plant(database)
    _quiet_week_then_spike(plant, "podcast_network", spike=4)
    _quiet_week_then_spike(plant, "agency", spike=4)
    plant.deployment("v2.0.0", day(6, hours=2))
    for index in range(1, 8):  # solo podcasters fire later and on their own, with no deployment before
        plant.rate("solo_podcaster", index, 0)
    checks = service(database, rule(), rule("errors_severe", severity="critical", threshold=2.0))
    checks.check(at=CHECK_AT)
    plant.rate("solo_podcaster", 12, 3)
    later = day(12, hours=3)
    checks.check(at=later)

    plan = plan_triage(database, None, TriageSettings(lookback_hours=24), later)

    by_size = sorted(plan.incidents, key=lambda i: len(i.escalation_ids))
    personas = [
        sorted({f.persona for f in plan.context.escalations if f.escalation_id in i.escalation_ids})
        for i in by_size
    ]
    # podcast_network's two rules overlap in time, and agency shares their deployment: one incident of four.
    assert personas == [["solo_podcaster"], ["agency", "podcast_network"]]
    assert len(by_size[1].escalation_ids) == 4
    lonely = rules_result(by_size[0], plan.context, TriageSettings())
    assert lonely.draft.probable_causes[0].confidence == "low"
    assert lonely.draft.probable_causes[0].title.startswith("unknown")
    assert check_draft(lonely.draft, lonely.evidence).ok


def test_asking_for_one_escalation_brings_in_the_open_ones_of_its_persona(database: Database) -> None:
    plant = Plant(database)
    _quiet_week_then_spike(plant, "podcast_network", spike=4)
    plant.deployment("v3.0.0", day(6, hours=2))
    checks = service(database, rule(), rule("errors_severe", severity="critical", threshold=2.0))
    opened = checks.check(at=CHECK_AT).opened

    plan = plan_triage(database, [opened[0]], TriageSettings(), CHECK_AT)

    [incident] = plan.incidents
    assert set(incident.escalation_ids) == set(opened) and len(opened) == 2


def _facts(**overrides: str) -> EscalationFacts:
    values = {"escalation_id": "esc_1", "evidence_id": "E1", "persona": "agency", "metric": "error_rate",
              "type": "error_spike", "severity": "high", "status": "firing", "title": "t",
              "opened_at": day(1), "resolved_at": None, "change_point": day(1),
              "change_from": day(1), "change_point_source": "opened"}  # fmt: skip
    return EscalationFacts(**(values | overrides))  # type: ignore[arg-type]


def test_routing_takes_the_first_matching_route_for_the_most_severe_escalation() -> None:
    settings = TriageSettings(
        routes=(
            Route("reports", "#reports-oncall", metric="error_rate", persona="podcast_network"),
            Route("support", "#support", type="support_load_increase"),
            Route("platform", "#platform", metric="error_rate"),
        ),
        default_owner=Owner("on-call", "#incidents"),
    )
    network = _facts(persona="podcast_network")
    support = _facts(escalation_id="esc_2", type="support_load_increase", metric="support_incidents",
                     severity="critical")  # fmt: skip
    assert route([network], settings) == Owner("reports", "#reports-oncall")
    assert route([_facts()], settings) == Owner("platform", "#platform")
    assert route([network, support], settings) == Owner("reports", "#reports-oncall")  # first route wins
    assert route([support], settings) == Owner("support", "#support")
    assert route([_facts(metric="renewal_success")], settings) == Owner("on-call", "#incidents")
    assert Route.from_dict({"team": "a", "channel": "#a", "persona": "agency"}).persona == "agency"


def test_no_escalations_no_incidents(database: Database) -> None:
    plan = plan_triage(database, None, TriageSettings(), CHECK_AT + timedelta(days=1))
    assert plan.incidents == () and plan.context.evidence == ()
