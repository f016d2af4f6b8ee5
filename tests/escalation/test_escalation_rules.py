"""Escalation rules: every invalid input is refused with an error naming its field; aliases resolve to the metric
or KPI they stand for; the seed's rule is accepted; stored rules are added once, updated, disabled and deleted."""

from __future__ import annotations

from typing import Any

import pytest

from store.database import Database
from tests.escalation.support import Clock, Plant, day, rule, service
from tools.escalation.defaults import default_rules
from tools.escalation.measure import resolve_metric
from tools.escalation.model import (
    EscalationInputError,
    EscalationNotFoundError,
    EscalationRule,
    EscalationSeverity,
    EscalationStateError,
    EscalationType,
    parse_rule,
)

VALID: dict[str, Any] = {
    "rule_id": "custom_rule",
    "escalation_type": "value_drop",
    "severity": "high",
    "condition": {"metric": "nps_score", "period_days": 7},
    "threshold": 0.0,
    "comparison": "less_than",
}
RELATIVE = {"condition": {"metric": "error_rate", "baseline": "previous_period"}, "threshold": 50.0}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rule_id": ""}, "rule_id"),
        ({"rule_id": "has space"}, "rule_id"),
        ({"rule_id": "x" * 101}, "rule_id"),
        ({"rule_id": "trailing\n"}, "rule_id"),
        ({"escalation_type": "outage"}, "escalation_type"),
        ({"escalation_type": EscalationSeverity.HIGH}, "escalation_type"),
        ({"severity": "urgent"}, "severity"),
        ({"severity": None}, "severity"),
        ({"comparison": "below"}, "comparison"),
        ({"comparison": None}, "comparison"),
        ({"condition": "error_rate"}, "condition"),
        ({"condition": ["error_rate"]}, "condition"),
        ({"condition": {"metric": "nps", "window": 7}}, "condition.window"),
        ({"condition": {"period_days": 7}}, "condition.metric"),
        ({"condition": {"metric": ""}}, "condition.metric"),
        ({"condition": {"metric": "nps", "period_days": 0}}, "condition.period_days"),
        ({"condition": {"metric": "nps", "period_days": 400}}, "condition.period_days"),
        ({"condition": {"metric": "nps", "period_days": -7}}, "condition.period_days"),
        ({"condition": {"metric": "nps", "period_days": 7.5}}, "condition.period_days"),
        ({"condition": {"metric": "nps", "period_days": True}}, "condition.period_days"),
        ({"condition": {"metric": "nps", "baseline": "last_week"}}, "condition.baseline"),
        ({"condition": {"metric": "nps", "baseline": "trailing_0_days"}}, "condition.baseline"),
        ({"condition": {"metric": "nps", "baseline": "trailing_400_days"}}, "condition.baseline"),
        ({"condition": {"metric": "nps", "persona": ""}}, "condition.persona"),
        (
            {"comparison": "drop_pct_greater_than", "condition": {"metric": "nps", "baseline": "absolute"}},
            "condition.baseline",
        ),
        ({"comparison": "significant_rise", **RELATIVE, "threshold": -5.0}, "threshold"),
        ({"comparison": "rise_pct_greater_than", **RELATIVE, "threshold": -0.1}, "threshold"),
        ({"threshold": "0"}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"recovery_threshold": -1.0}, "recovery_threshold"),  # less_than 0 recovering below 0 would flap
        ({"comparison": "greater_than", "threshold": 2.0, "recovery_threshold": 2.5}, "recovery_threshold"),
        (
            {"comparison": "drop_pct_greater_than", **RELATIVE, "recovery_threshold": 60.0},
            "recovery_threshold",
        ),
        (
            {"comparison": "rise_pct_greater_than", **RELATIVE, "recovery_threshold": 51.0},
            "recovery_threshold",
        ),
        ({"comparison": "significant_drop", **RELATIVE, "recovery_threshold": 50.5}, "recovery_threshold"),
        ({"comparison": "significant_rise", **RELATIVE, "recovery_threshold": 99.0}, "recovery_threshold"),
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": 0.9}, "alpha"),
        ({"alpha": 0.0}, "alpha"),
        ({"min_sample": 0}, "min_sample"),
        ({"min_sample": -3}, "min_sample"),
        ({"for_minutes": -1}, "for_minutes"),
        ({"for_minutes": 1.5}, "for_minutes"),
        ({"keep_firing_for_minutes": -10}, "keep_firing_for_minutes"),
        ({"action": ""}, "action"),
        ({"notification_channels": "slack"}, "notification_channels"),
        ({"notification_channels": ["slack", ""]}, "notification_channels"),
        ({"enabled": "yes"}, "enabled"),
        ({"description": 42}, "description"),
    ],
)
def test_each_invalid_rule_names_its_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(EscalationInputError) as caught:
        EscalationRule(**(VALID | overrides))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("comparison", "threshold", "recovery"),
    [
        ("less_than", 0.0, 0.0),
        ("less_than", 0.0, 10.0),
        ("greater_than", 2.0, 2.0),
        ("greater_than", 2.0, 1.5),
        ("drop_pct_greater_than", 50.0, 25.0),
        ("rise_pct_greater_than", 50.0, 50.0),
        ("significant_drop", 5.0, 2.0),
        ("significant_rise", 75.0, 30.0),
    ],
)
def test_recovery_on_the_healthy_side_of_the_threshold_is_accepted(
    comparison: str, threshold: float, recovery: float
) -> None:
    absolute = comparison in ("less_than", "greater_than")
    condition = {"metric": "error_rate", "baseline": "absolute" if absolute else "trailing_28_days"}
    accepted = EscalationRule(**(VALID | {"comparison": comparison, "threshold": threshold,
                                          "recovery_threshold": recovery, "condition": condition}))  # fmt: skip
    assert (accepted.threshold, accepted.recovery_threshold) == (threshold, recovery)
    assert isinstance(accepted.recovery_threshold, float)


def test_the_seeds_rule_is_accepted_with_defaults_filled_in() -> None:
    seed = EscalationRule(
        rule_id="custom_rule",
        escalation_type=EscalationType.VALUE_DROP,
        severity=EscalationSeverity.HIGH,
        condition={"metric": "nps_score", "period_days": 7},
        threshold=0.0,
        comparison="less_than",
        action="notify_product_team",
        notification_channels=["email", "slack"],
    )
    assert seed.condition == {"metric": "nps_score", "period_days": 7, "baseline": "previous_period"}
    assert (seed.metric, seed.period_days, seed.persona) == ("nps_score", 7, None)
    assert seed.escalation_type is EscalationType.VALUE_DROP and seed.severity is EscalationSeverity.HIGH
    assert (seed.for_minutes, seed.keep_firing_for_minutes, seed.min_sample, seed.alpha) == (0, 0, 30, 0.05)
    assert seed.notification_channels == ["email", "slack"]
    assert parse_rule(seed.as_dict()) == seed  # stored as JSON and read back unchanged


def test_text_enums_and_channels_are_normalised() -> None:
    normalised = EscalationRule(**(VALID | {"escalation_type": " Error_Spike ", "severity": "CRITICAL",
                                            "notification_channels": [" Slack", "EMAIL "],
                                            "condition": {"metric": " NPS ", "persona": " Agency"}}))  # fmt: skip
    assert normalised.escalation_type is EscalationType.ERROR_SPIKE
    assert normalised.severity is EscalationSeverity.CRITICAL
    assert normalised.notification_channels == ["slack", "email"]
    assert normalised.condition == {"metric": "nps", "baseline": "previous_period", "persona": "agency"}
    assert normalised.as_dict()["escalation_type"] == "error_spike"


@pytest.mark.parametrize(
    ("name", "resolved"),
    [
        ("nps_score", ("kpi", "nps")),
        ("NPS", ("kpi", "nps")),
        ("ttv", ("metric", "time_to_value")),
        ("time_to_value", ("metric", "time_to_value")),
        ("errors", ("metric", "error_rate")),
        ("support_load", ("metric", "support_incidents")),
        ("completion_rate", ("kpi", "task_completion_rate")),
        ("retention_rate", ("kpi", "retention_rate")),
        ("ltv", ("kpi", "ltv")),
    ],
)
def test_aliases_resolve_to_the_metric_or_kpi(name: str, resolved: tuple[str, str]) -> None:
    assert resolve_metric(name) == resolved


def test_parse_rule_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(EscalationInputError) as unknown:
        parse_rule(VALID | {"treshold": 1.0})
    assert unknown.value.field == "treshold"
    for required in ("rule_id", "escalation_type", "severity", "condition", "threshold", "comparison"):
        body = {k: v for k, v in VALID.items() if k != required}
        with pytest.raises(EscalationInputError) as missing:
            parse_rule(body)
        assert missing.value.field == required
    with pytest.raises(EscalationInputError) as not_object:
        parse_rule(["rule"])
    assert not_object.value.field == "body"


def test_default_rules_cover_the_five_seed_types_and_resolve() -> None:
    rules = default_rules()
    assert [r.escalation_type for r in rules] == [
        EscalationType.ERROR_SPIKE,
        EscalationType.VALUE_DROP,
        EscalationType.SUPPORT_LOAD_INCREASE,
        EscalationType.RETENTION_DROP,
        EscalationType.LTV_DEGRADATION,
    ]
    assert [resolve_metric(r.metric)[1] for r in rules] == [
        "error_rate", "nps", "support_incidents", "retention_rate", "ltv",
    ]  # fmt: skip
    assert all(r.min_sample >= 20 and r.for_minutes >= 60 for r in rules)


# ---- stored rules -------------------------------------------------------------------------------------------


def test_add_rule_refuses_an_unknown_metric_naming_condition_metric(database: Database) -> None:
    escalations = service(database)
    with pytest.raises(EscalationInputError) as caught:
        escalations.add_rule(rule(condition={"metric": "happiness", "baseline": "absolute"}))
    assert caught.value.field == "condition.metric"
    assert "'happiness' is not a metric or KPI" in str(caught.value) and "error_rate" in str(caught.value)
    assert escalations.rules() == []


def test_add_twice_update_disable_delete(database: Database) -> None:
    clock = Clock(day(0))
    escalations = service(database, clock=clock)
    seed_rule = parse_rule(VALID | {"notification_channels": ["email", "slack"]})
    assert escalations.add_rule(seed_rule) == seed_rule
    assert escalations.add_rule(VALID | {"rule_id": "from_json"}).rule_id == "from_json"
    with pytest.raises(EscalationStateError) as taken:
        escalations.add_rule(seed_rule)
    assert taken.value.field == "rule_id" and "already exists" in str(taken.value)
    assert [r.rule_id for r in escalations.rules()] == ["custom_rule", "from_json"]

    updated = escalations.update_rule("custom_rule", {"threshold": -10.0, "for_minutes": 30})
    assert (updated.threshold, updated.for_minutes) == (-10.0, 30)
    assert escalations.rule("custom_rule") == updated
    with pytest.raises(EscalationInputError) as bad_update:
        escalations.update_rule("custom_rule", {"comparison": "sideways"})
    assert bad_update.value.field == "comparison"
    with pytest.raises(EscalationInputError) as renamed:
        escalations.update_rule("custom_rule", {"rule_id": "other"})
    assert renamed.value.field == "rule_id"
    with pytest.raises(EscalationInputError) as unknown_metric:
        escalations.update_rule("custom_rule", {"condition": {"metric": "vibes"}})
    assert unknown_metric.value.field == "condition.metric"
    assert escalations.rule("custom_rule").threshold == -10.0  # refused updates changed nothing

    assert escalations.set_rule_enabled("custom_rule", False).enabled is False
    assert escalations.rule("custom_rule").enabled is False
    escalations.delete_rule("custom_rule")
    assert [r.rule_id for r in escalations.rules()] == ["from_json"]
    for call in (
        lambda: escalations.rule("custom_rule"),
        lambda: escalations.update_rule("custom_rule", {"threshold": 1.0}),
        lambda: escalations.set_rule_enabled("custom_rule", True),
        lambda: escalations.delete_rule("custom_rule"),
    ):
        with pytest.raises(EscalationNotFoundError) as missing:
            call()
        assert (missing.value.kind, missing.value.key) == ("rule", "custom_rule")


def test_a_disabled_rule_is_not_evaluated(database: Database) -> None:
    Plant(database).rate("agency", 1, 2)
    escalations = service(database, rule(enabled=False), rule("enabled_rule"))
    result = escalations.check(at=day(1))
    assert (result.evaluated, result.no_data) == (1, 0)
    assert [(e.rule_id, e.labels["persona"]) for e in result.active] == [("enabled_rule", "agency")]


def test_ensure_default_rules_stores_the_five_once(database: Database) -> None:
    escalations = service(database)
    assert escalations.ensure_default_rules() == 5
    assert escalations.ensure_default_rules() == 0
    assert sorted(r.rule_id for r in escalations.rules()) == sorted(r.rule_id for r in default_rules())
