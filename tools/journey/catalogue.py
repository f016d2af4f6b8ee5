"""Where a signal sits in journey theory: journey stage, Business Model Canvas block, behavioural principles and
the interventions they suggest. A fixed table, so the same signal always maps the same way.

Lookup order for a signal (`theory_for`): its kind's own rule (deployment → key_activities; an experiment's
`completion_rate` or unknown metric → its `facts["experiment_type"]`), then the metric or KPI name (aliases of
the tracking plan resolved), then an event name of the tracking plan, then a keyword in the name, then a survey
signal's `facts["trigger"]`, then the fallback (adoption / value_propositions / friction_ability).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tools.journey.principles import PRINCIPLES_BY_KEY, fill_template
from tools.retro.model import Signal, TheoryMapping

JOURNEY_STAGES: dict[str, str] = {
    "acquisition": "A prospect finds the product, signs up and decides to pay.",
    "onboarding": "A new user sets the product up: connects data, completes the first steps.",
    "first_value": "The user gets the first result worth having (the first report) — time to value ends here.",
    "adoption": "The product becomes part of the user's routine work; features are used again and again.",
    "renewal": "The customer (or their own customer) decides to keep paying, expand or leave.",
    "support": "The user needs help: tickets, incidents and how fast they are resolved.",
    "advocacy": "The user recommends the product; satisfaction and NPS live here.",
}

CANVAS_BLOCKS: dict[str, str] = {
    "customer_segments": "Who the product serves (the personas).",
    "value_propositions": "The value the product delivers to each segment.",
    "channels": "How the product reaches, converts and delivers to customers.",
    "customer_relationships": "How the product keeps and supports customers over time.",
    "revenue_streams": "How and how much customers pay, renew and expand.",
    "key_resources": "What the product needs to deliver: systems, data, people.",
    "key_activities": "What the team must do well: shipping, operating, fixing.",
    "key_partnerships": "Partners and suppliers the product depends on.",
    "cost_structure": "What delivering the product costs.",
}


@dataclass(frozen=True, slots=True)
class MetricTheory:
    """The theory for one metric: `lead` is an intervention template specific to the metric (may be empty)."""

    journey_stage: str
    canvas_block: str
    principles: tuple[str, ...]
    lead: str = ""


_TIME_TO_VALUE = MetricTheory(
    "first_value",
    "value_propositions",
    ("friction_ability", "endowed_progress", "goal_gradient"),
    "Shorten the path from signup to the first result for {persona} users",
)
_ONBOARDING = MetricTheory(
    "onboarding",
    "value_propositions",
    ("friction_ability", "endowed_progress", "goal_gradient"),
    "Find the onboarding step where {persona} users drop out and remove or automate it",
)
_REPORT_ACCURACY = MetricTheory(
    "first_value",
    "value_propositions",
    ("peak_end_rule", "friction_ability", "defaults"),
    "Trace the fields {persona} users correct most and fix their source data",
)
_ERROR_RATE = MetricTheory(
    "adoption",
    "key_activities",
    ("friction_ability", "peak_end_rule"),
    "Find the release or feature behind the new errors of {persona} users and fix or roll it back",
)
_RENEWAL = MetricTheory(
    "renewal",
    "revenue_streams",
    ("loss_aversion", "commitment_consistency", "peak_end_rule"),
    "Review the last campaigns of {persona} users that did not renew and what their final report showed",
)
_RETENTION = MetricTheory(
    "renewal",
    "customer_relationships",
    ("loss_aversion", "commitment_consistency", "habit_loop"),
    "Contact {persona} accounts at risk of leaving before their renewal date",
)
_REVENUE = MetricTheory(
    "renewal",
    "revenue_streams",
    ("loss_aversion", "commitment_consistency"),
    "Break {metric} down by plan for {persona} accounts to find where revenue leaks",
)
_EXPANSION = MetricTheory(
    "renewal",
    "revenue_streams",
    ("anchoring", "social_proof", "goal_gradient"),
    "Show {persona} accounts the next plan at the moment they reach their current plan's limits",
)
_ACQUISITION = MetricTheory(
    "acquisition",
    "channels",
    ("social_proof", "anchoring", "friction_ability"),
    "Compare {metric} of {persona} users by acquisition channel and move spend to the channels that convert",
)
_SUPPORT = MetricTheory(
    "support",
    "customer_relationships",
    ("friction_ability", "peak_end_rule"),
    "Group the support tickets of {persona} users by category and fix the product cause of the largest group",
)
_SUPPORT_SPEED = MetricTheory(
    "support",
    "customer_relationships",
    ("peak_end_rule", "reciprocity"),
    "Route tickets of {persona} users to the owning team sooner and close each one with a clear answer",
)
_AUTOMATION = MetricTheory(
    "adoption",
    "key_activities",
    ("defaults", "habit_loop"),
    "Turn on automation by default for the tasks {persona} users still do by hand",
)
_INFRA_COST = MetricTheory(
    "adoption",
    "cost_structure",
    ("defaults",),
    "Find the feature that drives infrastructure cost for {persona} users and give it cheaper defaults",
)
_TASKS = MetricTheory(
    "adoption",
    "value_propositions",
    ("friction_ability", "goal_gradient", "choice_overload"),
    "Read the failure reasons of the tasks {persona} users do not complete and fix the most common one",
)
_ADVOCACY = MetricTheory(
    "advocacy",
    "customer_relationships",
    ("peak_end_rule", "reciprocity", "social_proof"),
    "Follow up with {persona} detractors, fix what they name and tell them what changed",
)
_HABIT = MetricTheory(
    "adoption",
    "value_propositions",
    ("habit_loop", "prompts_triggers"),
    "Find the features {persona} users try once and never again, and give them a reason to come back",
)
_PRICING = MetricTheory(
    "acquisition",
    "revenue_streams",
    ("anchoring", "choice_overload", "loss_aversion"),
    "Test the price presentation for {persona} users against the current plan page",
)
_DEPLOYMENT = MetricTheory(
    "adoption",
    "key_activities",
    ("friction_ability", "peak_end_rule"),
    "Check the changes in the deployment against the metrics they touched and keep a rollback ready",
)
FALLBACK = MetricTheory("adoption", "value_propositions", ("friction_ability",))

# Metric and KPI names (tools.metrics.model.MetricCategory, tools.kpis.definitions), their aliases, and the event
# names of the tracking plan that experiments use as metrics.
METRIC_THEORY: dict[str, MetricTheory] = {
    "time_to_value": _TIME_TO_VALUE, "time_to_value_minutes": _TIME_TO_VALUE, "report_generated": _TIME_TO_VALUE,
    "onboarding_completion": _ONBOARDING, "onboarding_completed": _ONBOARDING,
    "onboarding_step_completed": _ONBOARDING, "podcast_connected": _ONBOARDING,
    "report_accuracy": _REPORT_ACCURACY, "report_corrected": _REPORT_ACCURACY, "report_sent": _REPORT_ACCURACY,
    "error_rate": _ERROR_RATE, "error_occurred": _ERROR_RATE,
    "renewal_success": _RENEWAL, "sponsor_renewed": _RENEWAL, "campaign_ended": _RENEWAL,
    "retention_rate": _RETENTION, "subscription_cancelled": _RETENTION,
    "net_revenue_retention": _REVENUE, "ltv": _REVENUE, "ltv_cac_ratio": _REVENUE,
    "subscription_contracted": _REVENUE, "payment_succeeded": _REVENUE,
    "upsell_rate": _EXPANSION, "expansion_rate": _EXPANSION,
    "subscription_upgraded": _EXPANSION, "subscription_expanded": _EXPANSION,
    "cac": _ACQUISITION, "conversion_rate": _ACQUISITION, "acquisition_cost": _ACQUISITION,
    "subscription_started": _ACQUISITION, "user_signed_up": _ACQUISITION,
    "support_incidents": _SUPPORT, "support_case_frequency": _SUPPORT, "support_ticket_opened": _SUPPORT,
    "support_resolution_time": _SUPPORT_SPEED, "support_ticket_resolved": _SUPPORT_SPEED,
    "automation_coverage": _AUTOMATION,
    "infra_cost_per_user": _INFRA_COST, "infra_cost": _INFRA_COST,
    "task_completion_rate": _TASKS, "task_completed": _TASKS, "task_failed": _TASKS,
    "nps": _ADVOCACY, "csat": _ADVOCACY, "ces": _ADVOCACY,
    "feature_reuse_rate": _HABIT, "feature_used": _HABIT, "campaign_created": _HABIT,
}  # fmt: skip

METRIC_ALIASES: dict[str, str] = {"nps_score": "nps", "completion_rate": "task_completion_rate"}

# An experiment's type decides where it sits when its metric does not say more (completion_rate means the
# type's own completion event: tools.experiments.model.COMPLETION_EVENTS).
EXPERIMENT_TYPE_THEORY: dict[str, MetricTheory] = {
    "onboarding": _ONBOARDING,
    "pricing": _PRICING,
    "report_template": _REPORT_ACCURACY,
    "feature": _HABIT,
    "other": FALLBACK,
}

# A survey's trigger (tools.surveys) says which moment of the journey its answers are about.
SURVEY_TRIGGER_THEORY: dict[str, MetricTheory] = {
    "value_delivered": _TIME_TO_VALUE,
    "report_sent": _REPORT_ACCURACY,
    "campaign_ended": _RENEWAL,
    "support_contact": _SUPPORT_SPEED,
    "onboarding": _ONBOARDING,
}

# Custom names: the first keyword contained in the name decides (order matters: "support" before "time").
_KEYWORDS: tuple[tuple[str, MetricTheory], ...] = (
    ("nps", _ADVOCACY), ("csat", _ADVOCACY), ("satisf", _ADVOCACY), ("recommend", _ADVOCACY),
    ("onboard", _ONBOARDING), ("support", _SUPPORT), ("ticket", _SUPPORT), ("incident", _SUPPORT),
    ("error", _ERROR_RATE), ("crash", _ERROR_RATE), ("latency", _ERROR_RATE), ("accura", _REPORT_ACCURACY),
    ("renew", _RENEWAL), ("churn", _RETENTION), ("retention", _RETENTION), ("revenue", _REVENUE),
    ("mrr", _REVENUE), ("upsell", _EXPANSION), ("expansion", _EXPANSION), ("price", _PRICING),
    ("pricing", _PRICING), ("conversion", _ACQUISITION), ("signup", _ACQUISITION), ("acquisition", _ACQUISITION),
    ("cost", _INFRA_COST), ("time_to_value", _TIME_TO_VALUE), ("ttv", _TIME_TO_VALUE),
    ("first_report", _TIME_TO_VALUE), ("report", _REPORT_ACCURACY), ("task", _TASKS), ("reuse", _HABIT),
    ("feature", _HABIT),
)  # fmt: skip

_IMPROVED_LEAD = (
    "Keep what moved {metric} for {persona} users and check whether it carries over to other personas"
)
_WINNER_LEAD = "Ship the winning variant to {persona} users and remove the losing code path"
_THEME_LEAD = "Confirm the theme in the answers of {persona} users with a metric before acting on it"
MAX_INTERVENTIONS = 5


def canonical_metric(name: str | None) -> str | None:
    """A metric or KPI name in the catalogue's spelling: lower case, aliases of the tracking plan resolved."""
    if name is None:
        return None
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return METRIC_ALIASES.get(key, key)


def theory_for_metric(name: str | None) -> MetricTheory | None:
    """The theory for a metric name, or None when neither the table nor a keyword knows it."""
    key = canonical_metric(name)
    if not key:
        return None
    if key in METRIC_THEORY:
        return METRIC_THEORY[key]
    return next((theory for keyword, theory in _KEYWORDS if keyword in key), None)


def theory_for(signal: Signal) -> MetricTheory:
    if signal.kind == "deployment":
        return _DEPLOYMENT
    metric = canonical_metric(signal.metric)
    if signal.kind == "experiment_result":
        experiment_type = str(signal.facts.get("experiment_type", "")).strip().lower()
        if experiment_type in EXPERIMENT_TYPE_THEORY and (metric is None or metric == "task_completion_rate"):
            return EXPERIMENT_TYPE_THEORY[experiment_type]
        by_metric = theory_for_metric(metric)
        return by_metric or EXPERIMENT_TYPE_THEORY.get(experiment_type, FALLBACK)
    by_metric = theory_for_metric(metric)
    if by_metric is not None:
        return by_metric
    if signal.kind in {"survey_shift", "survey_theme"}:
        trigger = str(signal.facts.get("trigger", "")).strip().lower()
        return SURVEY_TRIGGER_THEORY.get(trigger, _ADVOCACY)
    return FALLBACK


def map_signal(signal: Signal) -> TheoryMapping:
    """The signal's stage, canvas block, principles and interventions (templates filled with its persona and
    metric). The first intervention depends on the signal: a winning experiment → ship it, an improvement → keep
    it, a survey theme → confirm it with a metric, otherwise the metric's own lead."""
    theory = theory_for(signal)
    metric = signal.metric
    if signal.kind == "experiment_result" and signal.direction == "improved":
        lead = _WINNER_LEAD
    elif signal.kind == "survey_theme":
        lead = _THEME_LEAD
    elif signal.direction == "improved":
        lead = _IMPROVED_LEAD
    else:
        lead = theory.lead
    templates = [lead] if lead else []
    templates += [PRINCIPLES_BY_KEY[key].interventions[0] for key in theory.principles]
    interventions = _unique(fill_template(t, persona=signal.persona, metric=metric) for t in templates)
    return TheoryMapping(
        signal_id=signal.id,
        journey_stage=theory.journey_stage,
        canvas_block=theory.canvas_block,
        principles=theory.principles,
        interventions=tuple(interventions[:MAX_INTERVENTIONS]),
    )


def map_signals(signals: Iterable[Signal]) -> list[TheoryMapping]:
    return [map_signal(signal) for signal in signals]


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))
