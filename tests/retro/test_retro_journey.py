"""The theory catalogue: every metric and KPI maps somewhere specific, and mapping is deterministic."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from tests.retro.support import signal
from tools.journey import (
    CANVAS_BLOCKS,
    JOURNEY_STAGES,
    PRINCIPLES,
    PRINCIPLES_BY_KEY,
    map_signal,
    map_signals,
)
from tools.journey.catalogue import FALLBACK, METRIC_ALIASES, METRIC_THEORY, theory_for_metric
from tools.kpis.definitions import KPI_ALIASES, KPI_DEFINITIONS
from tools.metrics.model import MetricCategory
from tools.retro.model import CanvasBlock, JourneyStage

PRINCIPLE_KEYS = {
    "friction_ability", "prompts_triggers", "defaults", "endowed_progress", "goal_gradient", "peak_end_rule",
    "loss_aversion", "social_proof", "commitment_consistency", "choice_overload", "anchoring", "reciprocity",
    "habit_loop",
}  # fmt: skip
ALL_NAMES = [m.value for m in MetricCategory] + [k.name for k in KPI_DEFINITIONS] + list(KPI_ALIASES)


def test_catalogue_covers_the_model_vocabulary() -> None:
    assert set(JOURNEY_STAGES) == set(get_args(JourneyStage))
    assert set(CANVAS_BLOCKS) == set(get_args(CanvasBlock))
    assert set(PRINCIPLES_BY_KEY) == PRINCIPLE_KEYS
    for principle in PRINCIPLES:
        assert principle.definition and 2 <= len(principle.interventions) <= 3


def test_templates_carry_no_digits() -> None:
    """A digit in a template would be a number no signal holds: the grounding validator would reject it."""
    templates = [t for p in PRINCIPLES for t in p.interventions] + [t.lead for t in METRIC_THEORY.values()]
    assert not [t for t in templates if re.search(r"\d", t)]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_metric_and_kpi_has_a_specific_theory(name: str) -> None:
    theory = theory_for_metric(name)
    assert theory is not None and theory is not FALLBACK
    assert theory.journey_stage in JOURNEY_STAGES and theory.canvas_block in CANVAS_BLOCKS
    assert set(theory.principles) <= PRINCIPLE_KEYS
    mapping = map_signal(signal("S1", "kpi_change", metric=name, persona="agency", change=-0.3))
    assert mapping.journey_stage == theory.journey_stage and mapping.interventions
    assert all("{" not in text and "agency" in text for text in mapping.interventions)


@pytest.mark.parametrize(
    ("metric", "stage", "block", "principles"),
    [
        ("time_to_value", "first_value", "value_propositions", {"endowed_progress", "goal_gradient"}),
        ("onboarding_completion", "onboarding", "value_propositions", {"friction_ability", "endowed_progress"}),
        ("error_rate", "adoption", "key_activities", {"friction_ability", "peak_end_rule"}),
        ("report_accuracy", "first_value", "value_propositions", set()),
        ("renewal_success", "renewal", "revenue_streams", {"loss_aversion", "commitment_consistency"}),
        ("retention_rate", "renewal", "customer_relationships", {"loss_aversion", "commitment_consistency"}),
        ("net_revenue_retention", "renewal", "revenue_streams", {"loss_aversion"}),
        ("ltv", "renewal", "revenue_streams", {"loss_aversion"}),
        ("support_incidents", "support", "customer_relationships", set()),
        ("support_resolution_time", "support", "customer_relationships", set()),
        ("cac", "acquisition", "channels", set()),
        ("conversion_rate", "acquisition", "channels", set()),
        ("infra_cost_per_user", "adoption", "cost_structure", set()),
        ("nps_score", "advocacy", "customer_relationships", {"peak_end_rule", "reciprocity"}),
    ],
)  # fmt: skip
def test_metric_theory(metric: str, stage: str, block: str, principles: set[str]) -> None:
    mapping = map_signal(signal("S1", metric=metric, persona="podcast_network", direction="worsened"))
    assert (mapping.journey_stage, mapping.canvas_block) == (stage, block)
    assert principles <= set(mapping.principles)


def test_survey_signals() -> None:
    nps = map_signal(signal("S1", "survey_shift", metric="nps", persona="agency", direction="worsened"))
    assert (nps.journey_stage, nps.canvas_block) == ("advocacy", "customer_relationships")
    assert {"peak_end_rule", "reciprocity"} <= set(nps.principles)
    csat = map_signal(signal("S2", "survey_shift", metric="csat"))
    assert csat.journey_stage == "advocacy"
    renewal_survey = map_signal(signal("S3", "survey_theme", facts={"trigger": "campaign_ended"}))
    assert renewal_survey.journey_stage == "renewal"
    theme = map_signal(signal("S4", "survey_theme", persona="agency"))
    assert theme.journey_stage == "advocacy" and theme.interventions[0].startswith("Confirm the theme")


def test_experiments_map_by_metric_or_by_type() -> None:
    by_type = map_signal(
        signal("S1", "experiment_result", metric="completion_rate", facts={"experiment_type": "onboarding"})
    )
    assert by_type.journey_stage == "onboarding"
    pricing = map_signal(signal("S2", "experiment_result", facts={"experiment_type": "pricing"}))
    assert (pricing.journey_stage, pricing.canvas_block) == ("acquisition", "revenue_streams")
    template = map_signal(
        signal(
            "S3", "experiment_result", metric="custom_clicks", facts={"experiment_type": "report_template"}
        )
    )
    assert template.journey_stage == "first_value"
    by_metric = map_signal(
        signal("S4", "experiment_result", metric="renewal_success", facts={"experiment_type": "feature"})
    )
    assert by_metric.journey_stage == "renewal"
    winner = map_signal(signal("S5", "experiment_result", metric="time_to_value", direction="improved"))
    assert winner.interventions[0].startswith("Ship the winning variant")
    assert winner.journey_stage == "first_value"


def test_escalation_deployment_unknown_and_improvement() -> None:
    escalation = map_signal(signal("S1", "escalation", metric="error_rate", facts={"severity": "critical"}))
    assert escalation.canvas_block == "key_activities"
    deployment = map_signal(signal("S2", "deployment", subject="v1.4.0"))
    assert deployment.canvas_block == "key_activities"
    unknown = map_signal(signal("S3", metric="zzz_custom", persona="agency"))
    assert (unknown.journey_stage, unknown.canvas_block, unknown.principles) == (
        "adoption", "value_propositions", ("friction_ability",),
    )  # fmt: skip
    improved = map_signal(signal("S4", metric="ltv", persona="agency", direction="improved"))
    assert (
        improved.interventions[0]
        == "Keep what moved ltv for agency users and check whether it carries over to other personas"
    )
    everyone = map_signal(signal("S5", metric="error_rate"))
    assert all("all users" in text or "{" not in text for text in everyone.interventions)


def test_aliases_and_order() -> None:
    assert METRIC_ALIASES["nps_score"] == "nps"
    signals = [signal(f"S{i}", metric=name) for i, name in enumerate(["nps", "cac", "ltv"], start=1)]
    assert [m.signal_id for m in map_signals(signals)] == ["S1", "S2", "S3"]
    assert map_signals(signals) == map_signals(signals)
