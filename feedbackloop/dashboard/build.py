"""Assemble DashboardData from the store: KPIs now and before, persona rankings, metric reports."""

from __future__ import annotations

from datetime import UTC, datetime

from feedbackloop.dashboard.data import DashboardData, KpiCard
from feedbackloop.dashboard.escalations_panel import escalations_panel
from feedbackloop.dashboard.experiments_panel import experiments_panel
from feedbackloop.dashboard.surveys_panel import surveys_panel
from feedbackloop.settings import Settings
from store.database import Database
from store.repositories.active_users import shared_activity
from tools.kpis.comparison import KpiChange, kpi_changes, rank_personas
from tools.kpis.compute import compute_kpis
from tools.kpis.definitions import KPIS_BY_NAME
from tools.kpis.model import KpiSnapshot, KpiValue
from tools.metrics.compute import METRIC_SPECS, metric_reports
from tools.window import Window

KPI_LABELS = {
    "ltv": "Lifetime value",
    "cac": "Acquisition cost (CAC)",
    "ltv_cac_ratio": "LTV : CAC",
    "nps": "NPS",
    "support_case_frequency": "Support cases",
    "time_to_value_minutes": "Time to value",
    "infra_cost_per_user": "Infra cost per user",
}


def build_dashboard(
    database: Database,
    settings: Settings,
    window: Window,
    *,
    persona: str | None = None,
    now: datetime | None = None,
) -> DashboardData:
    with database.read() as connection, shared_activity(connection):
        current = compute_kpis(connection, window, gross_margin=settings.gross_margin)
        previous = compute_kpis(connection, window.previous(), gross_margin=settings.gross_margin)
        metrics = metric_reports(
            connection,
            list(METRIC_SPECS),
            window,
            persona=persona,
            renewal_window_days=settings.renewal_window_days,
        )
    generated_at = now or datetime.now(UTC)
    escalations = escalations_panel(database, persona)
    experiments = experiments_panel(database, generated_at)
    surveys = surveys_panel(database, window, persona)
    shown_now, shown_before = _scope(current, persona), _scope(previous, persona)
    personas = {p: v for p, v in current.personas.items() if persona is None or p == persona}
    leaders = {r.kpi: r.leader for r in rank_personas(current) if r.leader is not None}
    return DashboardData(
        window=window,
        persona=persona,
        generated_at=generated_at,
        cards=[_card(change) for change in kpi_changes(shown_now, shown_before)],
        persona_kpis=personas,
        persona_leaders=leaders if persona is None else {},
        metrics=metrics,
        panels=[panel for panel in (escalations, experiments, surveys) if panel is not None],
        notes=_notes(shown_now),
    )


def _scope(snapshot: KpiSnapshot, persona: str | None) -> dict[str, KpiValue]:
    if persona is None:
        return snapshot.overall
    return snapshot.personas.get(persona, {})


def _card(change: KpiChange) -> KpiCard:
    definition = KPIS_BY_NAME[change.name]
    return KpiCard(
        name=change.name,
        label=KPI_LABELS.get(change.name, change.name.replace("_", " ").capitalize()),
        category=definition.category,
        unit=definition.unit,
        value=change.current.value,
        previous_value=change.previous.value if change.previous is not None else None,
        change=change.change,
        p_value=change.p_value,
        significant=change.significant,
        improved=change.improved,
        n=change.current.n,
        reason=change.current.reason,
    )


def _notes(values: dict[str, KpiValue]) -> list[str]:
    notes = [
        "Changes are coloured only when significant at α = 0.05 (two-sided Welch test against the previous window "
        "of equal length). Shown without a verdict: derived KPIs (LTV, CAC, expansion, NRR, infra cost), medians "
        "(support resolution time, time to value: their tests would judge the mean) and the conversion rate (the "
        "latest signups have had less than 30 days to convert)."
    ]
    missing = sorted(name for name, value in values.items() if value.value is None)
    if missing:
        notes.append(f"No value this window for: {', '.join(missing)} (each card says why).")
    return notes
