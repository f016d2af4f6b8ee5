"""A realistic DashboardData built by hand: every KPI, four personas, five 30-day metric series, panels.

Numbers are fixed (a seeded generator for the daily wiggle) so the rendered page is the same on every run. One
persona is named `<script>alert(1)</script>` to prove that the page escapes what users typed.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

from feedbackloop.dashboard.data import DashboardData, KpiCard, Panel
from tools.kpis.definitions import KPIS_BY_NAME
from tools.kpis.model import KpiValue
from tools.metrics.model import DailyPoint, MetricComparison, MetricReport, MetricSummary
from tools.window import Window

HOSTILE_PERSONA = "<script>alert(1)</script>"
PERSONAS = ("solo_podcaster", "podcast_network", "agency", HOSTILE_PERSONA)
WINDOW = Window.last_days(30, end=datetime(2026, 3, 2, tzinfo=UTC))
GENERATED_AT = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
NO_CAC = "no acquisition_cost events in the window: send them to compute CAC"

# name: (label, value, previous value, p-value, significant, n, reason)
CARDS: dict[str, tuple[str, float | None, float | None, float | None, bool, int, str | None]] = {
    "conversion_rate": ("Conversion rate", 0.084, 0.071, 0.012, True, 1240, None),
    "ltv": ("Lifetime value", 2340.0, 2210.0, None, False, 212, None),
    "cac": ("Acquisition cost (CAC)", None, 410.0, None, False, 0, NO_CAC),
    "ltv_cac_ratio": ("LTV : CAC", None, 5.4, None, False, 0, "needs CAC, which has no value in this window"),
    "retention_rate": ("Retention", 0.936, 0.948, 0.31, False, 204, None),
    "upsell_rate": ("Upsell rate", 0.047, 0.039, 0.42, False, 212, None),
    "expansion_rate": ("Expansion rate", 0.021, 0.018, None, False, 212, None),
    "net_revenue_retention": ("Net revenue retention", 1.012, 0.994, None, False, 212, None),
    "support_case_frequency": ("Support cases", 0.18, 0.15, 0.09, False, 1870, None),
    "support_resolution_time": ("Support resolution time", 14.2, 9.6, 0.004, True, 336, None),
    "automation_coverage": ("Automation coverage", 0.62, 0.55, 0.0004, True, 5120, None),
    "infra_cost_per_user": ("Infra cost per user", 0.42, 0.45, None, False, 1870, None),
    "task_completion_rate": ("Task completion", 0.873, 0.901, 0.021, True, 5864, None),
    "nps": ("NPS", 32.0, 27.0, 0.18, False, 318, None),
    "feature_reuse_rate": ("Feature reuse", 0.46, 0.44, 0.51, False, 1402, None),
    "time_to_value_minutes": ("Time to value", 18.5, 26.0, 0.002, True, 388, None),
}
PERSONA_SHARE = {"solo_podcaster": 0.46, "podcast_network": 0.22, "agency": 0.25, HOSTILE_PERSONA: 0.07}
PERSONA_FACTOR = {"solo_podcaster": 0.92, "podcast_network": 1.08, "agency": 1.15, HOSTILE_PERSONA: 0.81}
LEADER_KPIS = ("conversion_rate", "automation_coverage", "nps", "time_to_value_minutes")

# metric: (unit, higher_is_better, overall value, previous value, p-value, daily slope per day, noise)
METRICS: dict[str, tuple[str, bool, float, float, float, float, float]] = {
    "time_to_value": ("seconds", False, 1110.0, 1560.0, 0.002, -14.0, 90.0),
    "report_accuracy": ("ratio", True, 0.962, 0.958, 0.47, 0.0002, 0.008),
    "renewal_success": ("ratio", True, 0.71, 0.64, 0.03, 0.002, 0.04),
    "error_rate": ("per_user", False, 0.12, 0.09, 0.008, 0.0012, 0.012),
    "support_incidents": ("per_user_30d", False, 0.18, 0.15, 0.09, 0.0008, 0.02),
}


def sample_dashboard() -> DashboardData:
    return DashboardData(
        window=WINDOW,
        persona=None,
        generated_at=GENERATED_AT,
        cards=[_card(name) for name in CARDS],
        persona_kpis={persona: _persona_kpis(persona) for persona in PERSONAS},
        persona_leaders=_leaders(),
        metrics=[_report(metric) for metric in METRICS],
        panels=_panels(),
        notes=[
            "CAC and LTV : CAC need acquisition_cost events; none arrived in this window.",
            "Personas with fewer than 30 users rarely reach significance & are shown for context only.",
        ],
    )


def _relative_change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return value / previous - 1


def _card(name: str) -> KpiCard:
    label, value, previous, p_value, significant, n, reason = CARDS[name]
    definition = KPIS_BY_NAME[name]
    change = _relative_change(value, previous)
    improved = None
    if significant and change is not None:
        improved = (change > 0) == definition.higher_is_better
    return KpiCard(
        name=name,
        label=label,
        category=definition.category,
        unit=definition.unit,
        value=value,
        previous_value=previous,
        change=change,
        p_value=p_value,
        significant=significant,
        improved=improved,
        n=n,
        reason=reason,
    )


def _persona_kpis(persona: str) -> dict[str, KpiValue]:
    values = {}
    for index, (name, (_, value, _, _, _, n, reason)) in enumerate(CARDS.items()):
        persona_n = round(n * PERSONA_SHARE[persona])
        if value is None:
            values[name] = KpiValue(name, None, 0, reason=reason)
        elif name == "ltv" and persona == HOSTILE_PERSONA:
            values[name] = KpiValue(name, None, persona_n, reason="fewer than 20 paying accounts")
        else:
            values[name] = KpiValue(name, _persona_value(name, value, persona, index), persona_n)
    return values


def _persona_value(name: str, value: float, persona: str, index: int) -> float:
    # Personas differ by a fixed factor whose sign flips from KPI to KPI, so no persona leads everything.
    factor = 1 + (PERSONA_FACTOR[persona] - 1) * (-1) ** index
    scaled = value * factor
    if KPIS_BY_NAME[name].unit == "ratio" and name != "net_revenue_retention":
        scaled = min(scaled, 0.99)
    return scaled


def _leaders() -> dict[str, str]:
    leaders = {}
    for name in LEADER_KPIS:
        index = list(CARDS).index(name)
        value = CARDS[name][1]
        assert value is not None
        sign = 1 if KPIS_BY_NAME[name].higher_is_better else -1
        leaders[name] = max(PERSONAS, key=lambda p: sign * _persona_value(name, value, p, index))
    return leaders


def _daily(metric: str, persona: str | None, level: float) -> tuple[DailyPoint, ...]:
    unit, _, _, _, _, slope, noise = METRICS[metric]
    generator = random.Random(f"{metric}/{persona}")
    days = WINDOW.dates()
    points = []
    for index, day in enumerate(days):
        n = 0 if _is_gap(metric, persona, day) else generator.randint(8, 60)
        wiggle = math.sin(index / 3.0) * noise * 0.5 + generator.uniform(-noise, noise)
        value = level + slope * (index - len(days) / 2) + wiggle
        if unit == "ratio":
            value = min(max(value, 0.0), 1.0)
        points.append(DailyPoint(day, n, max(value, 0.0) if n else None))
    return tuple(points)


def _is_gap(metric: str, persona: str | None, day: date) -> bool:
    # Small personas have days without a single observation: the chart must show a gap, not a zero.
    return metric == "renewal_success" and persona == HOSTILE_PERSONA and day.day % 6 in (0, 1)


def _comparison(metric: str, persona: str | None, factor: float) -> MetricComparison:
    unit, higher_is_better, value, previous, p_value, _, _ = METRICS[metric]
    # Personas moved by different amounts: the previous level gets half the persona's factor again.
    previous_factor = 1 + (factor - 1) * 1.5
    if unit == "ratio":  # scale the miss rate, so a better persona gets closer to 100% without passing it
        current_value, previous_value = (
            1 - (1 - value) * (2 - factor),
            1 - (1 - previous) * (2 - previous_factor),
        )
    else:
        current_value, previous_value = value * factor, previous * previous_factor
    significant = persona is None and p_value < 0.05
    change = _relative_change(current_value, previous_value)
    improved = ((change or 0) > 0) == higher_is_better if significant else None
    durations = unit == "seconds"  # durations carry quantiles; rates do not
    p50, p90 = (current_value * 0.76, current_value * 2.4) if durations else (None, None)
    n = 2400 if persona is None else round(2400 * PERSONA_SHARE[persona])
    return MetricComparison(
        current=MetricSummary(metric, persona, WINDOW, unit, n, current_value, p50=p50, p90=p90),
        previous=MetricSummary(metric, persona, WINDOW.previous(), unit, n, previous_value),
        change=change,
        p_value=p_value if persona is None else min(p_value * 6, 0.9),
        significant=significant,
        improved=improved,
        daily=_daily(metric, persona, current_value),
    )


def _report(metric: str) -> MetricReport:
    return MetricReport(
        metric=metric,
        window=WINDOW,
        higher_is_better=METRICS[metric][1],
        overall=_comparison(metric, None, 1.0),
        personas={persona: _comparison(metric, persona, _metric_factor(persona)) for persona in PERSONAS},
    )


def _metric_factor(persona: str) -> float:
    # Closer together than the KPI factors: daily metric lines that overlap a little look like real data.
    return 1 + (PERSONA_FACTOR[persona] - 1) / 2


def _panels() -> list[Panel]:
    escalations = Panel(
        title="Open escalations",
        columns=("Opened", "Rule", "Persona", "Metric", "Change", "Severity"),
        rows=(
            ("Feb 27, 09:12", "task completion drop", "agency", "task_completion_rate", "-6.1%", "high"),
            ("Feb 25, 16:40", "slow support", "podcast_network", "support_resolution_time", "+48%", "medium"),
            ("Feb 21, 11:03", "errors after deploy 2.14.0", HOSTILE_PERSONA, "error_rate", "+33%", "medium"),
        ),
    )
    experiments = Panel(
        title="Running experiments",
        columns=("Experiment", "Metric", "Variants", "Started", "Users"),
        rows=(
            ("onboarding-checklist-v2", "time_to_value", "control / checklist", "Feb 10", "1,884"),
            ("report-template-<b>bold</b>", "report_accuracy", "control / compact / rich", "Feb 18", "642"),
        ),
    )
    return [escalations, experiments, Panel(title="Recent deployments", columns=("Version",), rows=())]
