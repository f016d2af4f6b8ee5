"""The metrics and kpis families: every metric and every testable KPI, overall and per persona, in the window vs
its baseline, as tools.metrics and tools.kpis compute them (SQL aggregation; p-values from tools.stats).

Shape of both families (see tools.retro.gathered for a comparison record):

    {"baseline": {"start", "end"},
     "items": [{"name": str, "unit": str, "kind": str, "higher_is_better": bool | None,
                "segments": [comparison + {"daily": [{"day", "n", "value"}]}  (metrics only; everyone first)]}]}

KPIs are limited to those tools.kpis.comparison can test (proportions and per-unit means; not medians, derived
figures or maturing cohorts), less support_case_frequency, which is the support_incidents metric: a KPI without a
test could never become a signal, and skipping it skips its queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from tools.kpis.comparison import MATURING_KPIS, MEDIAN_KPIS, KpiChange, kpi_changes
from tools.kpis.compute import compute_kpis
from tools.kpis.definitions import KPI_DEFINITIONS
from tools.kpis.model import KpiValue
from tools.metrics.compute import METRIC_SPECS, MetricSpec, metric_reports
from tools.metrics.model import MetricComparison, MetricSummary
from tools.retro.gathered import Comparison, current_window, iso, side, wanted
from tools.retro.model import RetroWindow

if TYPE_CHECKING:
    from tools.retro.gather import GatherSettings

# A KPI that is a metric under another name is tested once, as the metric (else one change is two signals and
# the family of tests grows for nothing).
KPIS_TESTED_AS_METRICS = frozenset({"support_case_frequency"})  # = the support_incidents metric
TESTABLE_KPIS = tuple(
    definition.name
    for definition in KPI_DEFINITIONS
    if definition.kind in ("proportion", "per_unit")
    and definition.name not in MEDIAN_KPIS | MATURING_KPIS | KPIS_TESTED_AS_METRICS
)


def metrics(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    span = current_window(window)
    reports = metric_reports(
        connection,
        list(METRIC_SPECS),
        span,
        renewal_window_days=settings.renewal_window_days,
        alpha=settings.alpha,
    )
    items = []
    for report in reports:
        spec = METRIC_SPECS[report.metric]
        segments = [(None, report.overall), *sorted(report.personas.items())]
        items.append({
            "name": str(report.metric), "unit": spec.unit, "kind": spec.kind, "higher_is_better": spec.higher_is_better,
            "segments": [_metric_record(persona, comparison, spec) for persona, comparison in segments
                         if wanted(persona, settings.personas)],
        })  # fmt: skip
    return {"baseline": _baseline(window), "items": items}


def _metric_record(persona: str | None, comparison: MetricComparison, spec: MetricSpec) -> dict[str, Any]:
    now, before = comparison.current, comparison.previous
    return Comparison(
        persona=persona, value=now.value, baseline=before.value, n=now.n, baseline_n=before.n,
        change=comparison.change, p_value=comparison.p_value, current=_metric_side(now, spec),
        previous=_metric_side(before, spec), value_ci=now.rate_ci,
    ).record(daily=[point.as_dict() for point in comparison.daily])  # fmt: skip


def _metric_side(summary: MetricSummary, spec: MetricSpec) -> dict[str, Any] | None:
    """The statistic tools.metrics tested: binomial for 0/1 proportions, a mean otherwise (unscaled, so relative
    changes and their intervals are the same as those of the per-30-day figures)."""
    binomial = spec.kind == "proportion" and summary.numerator == summary.sum_squares
    return side(summary.n, summary.numerator, summary.sum_squares, binomial=binomial)


def kpis(connection: Connection, window: RetroWindow, settings: GatherSettings) -> dict[str, Any]:
    span = current_window(window)
    now = compute_kpis(connection, span, gross_margin=settings.gross_margin, only=TESTABLE_KPIS)
    before = compute_kpis(connection, span.previous(), gross_margin=settings.gross_margin, only=TESTABLE_KPIS)
    personas = sorted(set(now.personas) | set(before.personas))
    changes: dict[str | None, dict[str, KpiChange]] = {}
    for persona in [None, *personas]:
        if not wanted(persona, settings.personas):
            continue
        current = now.overall if persona is None else now.personas.get(persona, {})
        previous = before.overall if persona is None else before.personas.get(persona, {})
        tested = kpi_changes(_only(current), _only(previous))
        changes[persona] = {change.name: change for change in tested}
    items = []
    for definition in KPI_DEFINITIONS:
        if definition.name not in TESTABLE_KPIS:
            continue
        segments = [
            _kpi_record(persona, found[definition.name], definition.kind)
            for persona, found in changes.items()
            if definition.name in found
        ]
        items.append({
            "name": definition.name, "unit": definition.unit, "kind": definition.kind,
            "higher_is_better": definition.higher_is_better, "category": definition.category,
            "segments": segments,
        })  # fmt: skip
    return {"baseline": _baseline(window), "items": items}


def _only(values: dict[str, KpiValue]) -> dict[str, KpiValue]:
    """compute_kpis(only=…) fills the other KPIs from empty inputs: they must not be read."""
    return {name: value for name, value in values.items() if name in TESTABLE_KPIS}


def _kpi_record(persona: str | None, change: KpiChange, kind: str) -> dict[str, Any]:
    before = change.previous
    return Comparison(
        persona=persona, value=change.current.value, baseline=before.value if before else None,
        n=change.current.n, baseline_n=before.n if before else 0, change=change.change, p_value=change.p_value,
        current=_kpi_side(change.current, kind), previous=_kpi_side(before, kind) if before else None,
    ).record(reason=change.current.reason)  # fmt: skip


def _kpi_side(value: KpiValue, kind: str) -> dict[str, Any] | None:
    """The statistic tools.kpis.comparison tests: binomial(denominator, numerator) or mean(n, Σx, Σx²)."""
    if value.value is None or value.numerator is None:
        return None
    n = int(value.denominator if value.denominator is not None else value.n)
    if kind == "proportion":
        return side(n, value.numerator, value.numerator, binomial=True)
    return side(n, value.numerator, value.sum_squares, binomial=False)


def _baseline(window: RetroWindow) -> dict[str, Any]:
    return {"start": iso(window.baseline_start), "end": iso(window.baseline_end)}
