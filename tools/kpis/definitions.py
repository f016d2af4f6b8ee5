"""The KPIs of the tracking plan (shared/TRACKING_PLAN.md), with category, unit and direction.

Names here are the names of every door (JSON, CLI, rules, retros). Aliases from the product's original
specification resolve through `resolve_kpi_name`.
"""

from __future__ import annotations

from tools.kpis.model import KpiDefinition

KPI_DEFINITIONS: tuple[KpiDefinition, ...] = (
    KpiDefinition("conversion_rate", "business_success", "ratio", "proportion", True,
                  "signups in the window that started a subscription within 30 days ÷ signups"),
    KpiDefinition("ltv", "business_success", "usd", "derived", True,
                  "ARPA (monthly revenue per paying account) × gross margin ÷ monthly logo churn"),
    KpiDefinition("cac", "business_success", "usd", "derived", False,
                  "acquisition cost in the window ÷ new paying accounts in the window"),
    KpiDefinition("ltv_cac_ratio", "business_success", "x", "derived", True, "ltv ÷ cac"),
    KpiDefinition("retention_rate", "business_success", "ratio", "proportion", True,
                  "paying accounts at window start still paying at window end ÷ paying at start"),
    KpiDefinition("upsell_rate", "business_success", "ratio", "proportion", True,
                  "accounts with subscription_upgraded in the window ÷ paying accounts"),
    KpiDefinition("expansion_rate", "business_success", "ratio", "derived", True,
                  "(expansion + upgrade mrr_delta in the window) ÷ MRR at window start"),
    KpiDefinition("net_revenue_retention", "business_success", "ratio", "derived", True,
                  "(MRR at start + expansion + upgrades − contraction − churned MRR) ÷ MRR at start"),
    KpiDefinition("support_case_frequency", "operational_ease", "per_user_30d", "per_unit", False,
                  "support tickets opened per active user per 30 days"),
    KpiDefinition("support_resolution_time", "operational_ease", "hours", "per_unit", False,
                  "median hours to resolve tickets resolved in the window (mean also reported)"),
    KpiDefinition("automation_coverage", "operational_ease", "ratio", "proportion", True,
                  "task_completed with automated=true ÷ all task_completed"),
    KpiDefinition("infra_cost_per_user", "operational_ease", "usd", "derived", False,
                  "infra cost in the window ÷ active users"),
    KpiDefinition("task_completion_rate", "user_success", "ratio", "proportion", True,
                  "task_completed ÷ (task_completed + task_failed)"),
    KpiDefinition("nps", "user_success", "score", "derived", True,
                  "% promoters (9–10) − % detractors (0–6) over answered NPS questions"),
    KpiDefinition("feature_reuse_rate", "user_success", "ratio", "proportion", True,
                  "users who used a feature on ≥ 2 distinct days ÷ users who used it at all"),
    KpiDefinition("time_to_value_minutes", "user_success", "minutes", "per_unit", False,
                  "median minutes from signup to first report (users reaching first value in the window)"),
)  # fmt: skip

KPIS_BY_NAME: dict[str, KpiDefinition] = {kpi.name: kpi for kpi in KPI_DEFINITIONS}
KPI_ALIASES: dict[str, str] = {
    "nps_score": "nps",
    "completion_rate": "task_completion_rate",
    "time_to_value": "time_to_value_minutes",
}


class UnknownKpiError(ValueError):
    """A KPI name that is neither a KPI nor an alias; the message lists the known names."""


def resolve_kpi_name(name: str) -> str:
    key = name.strip().lower()
    key = KPI_ALIASES.get(key, key)
    if key not in KPIS_BY_NAME:
        raise UnknownKpiError(f"unknown KPI {name!r}; known: {', '.join(sorted(KPIS_BY_NAME))}")
    return key
