"""The five default rules (the seed's escalation types), evaluated per persona. Editable once stored.

Thresholds are chosen so that noise does not page: the relative rules also need a Welch test significant at
α = 0.01 (each rule is tested for every persona at every check, so 0.05 would page on noise every few weeks),
and every rule has a minimum sample below which its instance is no_data rather than healthy. Spikes are measured
against the 28 days before the week (not the week before), so a regression that has lasted two weeks is still
compared with how things were before it, instead of with its own first week.
"""

from __future__ import annotations

from tools.escalation.model import EscalationRule, EscalationSeverity, EscalationType

DEFAULT_CHANNELS = ["slack", "email", "pagerduty", "webhook", "file"]


def default_rules() -> list[EscalationRule]:
    return [
        EscalationRule(
            rule_id="error_spike", escalation_type=EscalationType.ERROR_SPIKE,
            severity=EscalationSeverity.CRITICAL,
            condition={"metric": "error_rate", "period_days": 7, "baseline": "trailing_28_days"},
            threshold=75.0, recovery_threshold=30.0, comparison="significant_rise", action="page_on_call", alpha=0.01,
            notification_channels=DEFAULT_CHANNELS, min_sample=30, for_minutes=60, keep_firing_for_minutes=360,
        ),
        EscalationRule(
            rule_id="value_drop", escalation_type=EscalationType.VALUE_DROP, severity=EscalationSeverity.HIGH,
            condition={"metric": "nps", "period_days": 7, "baseline": "absolute"},
            threshold=0.0, recovery_threshold=10.0, comparison="less_than", action="notify_product_team",
            notification_channels=DEFAULT_CHANNELS, min_sample=20, for_minutes=60, keep_firing_for_minutes=360,
        ),
        EscalationRule(
            rule_id="support_load_increase", escalation_type=EscalationType.SUPPORT_LOAD_INCREASE,
            severity=EscalationSeverity.MEDIUM,
            condition={"metric": "support_incidents", "period_days": 7, "baseline": "trailing_28_days"},
            threshold=25.0, recovery_threshold=10.0, comparison="significant_rise", action="notify_support_lead",
            alpha=0.01,
            notification_channels=DEFAULT_CHANNELS, min_sample=30, for_minutes=60,
        ),
        EscalationRule(
            rule_id="retention_drop", escalation_type=EscalationType.RETENTION_DROP,
            severity=EscalationSeverity.HIGH,
            condition={"metric": "retention_rate", "period_days": 30, "baseline": "previous_period"},
            threshold=5.0, recovery_threshold=2.0, comparison="significant_drop", action="notify_growth_team",
            alpha=0.01,
            notification_channels=DEFAULT_CHANNELS, min_sample=30, for_minutes=60,
        ),
        EscalationRule(
            rule_id="ltv_degradation", escalation_type=EscalationType.LTV_DEGRADATION,
            severity=EscalationSeverity.HIGH,
            condition={"metric": "ltv", "period_days": 30, "baseline": "previous_period"},
            threshold=50.0, recovery_threshold=25.0, comparison="drop_pct_greater_than",
            action="notify_revenue_team", notification_channels=DEFAULT_CHANNELS, min_sample=50,
            for_minutes=24 * 60,  # LTV is a ratio of small counts (churned accounts) and has no test: demand a day
        ),
    ]  # fmt: skip
