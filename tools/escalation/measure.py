"""Measurements a rule compares: one metric or KPI per persona over one window, with its sufficient statistic.

Metrics come from tools.metrics and KPIs from tools.kpis (SQL aggregation); nothing is recomputed here. A check
evaluates many rules over few distinct windows, so results are cached per (metric, window) for the check: the
KPI snapshot of a window is computed once for every KPI rule that reads that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Connection

from tools.escalation.model import EscalationInputError
from tools.kpis.compute import compute_kpis
from tools.kpis.definitions import KPI_ALIASES, KPIS_BY_NAME
from tools.kpis.model import KpiValue
from tools.metrics.compute import METRIC_ALIASES, METRIC_SPECS, window_summaries
from tools.metrics.model import MetricSummary
from tools.stats.statistics import BinomialStatistic, MeanStatistic
from tools.window import Window

Source = Literal["metric", "kpi"]
Statistic = BinomialStatistic | MeanStatistic


@dataclass(frozen=True, slots=True)
class Measurement:
    value: float | None
    n: int
    statistic: Statistic | None = None  # None when the value cannot be tested (derived KPIs, medians)
    reason: str | None = None


def resolve_metric(name: str) -> tuple[Source, str]:
    """A rule's metric name → (metric | kpi, canonical name). Metrics win where both exist (time_to_value)."""
    key = name.strip().lower()
    metric = METRIC_ALIASES.get(key, key)
    if metric in METRIC_SPECS:
        return "metric", metric
    kpi = KPI_ALIASES.get(key, key)
    if kpi in KPIS_BY_NAME:
        return "kpi", kpi
    known = sorted(set(METRIC_SPECS) | set(KPIS_BY_NAME) | set(METRIC_ALIASES) | set(KPI_ALIASES))
    raise EscalationInputError(
        "condition.metric", f"{name!r} is not a metric or KPI (known: {', '.join(known)})"
    )


def testable(source: Source, name: str) -> bool:
    """Whether a significance test exists for this metric or KPI (every metric; proportions, per-unit means and
    NPS among the KPIs)."""
    if source == "metric":
        return True
    return name == "nps" or (
        KPIS_BY_NAME[name].kind in ("proportion", "per_unit") and name not in MEDIAN_KPIS
    )


@dataclass
class MeasurementCache:
    """Per-persona measurements of one check, computed on first use.

    `plan` maps each window to the canonical metric and KPI names the check reads over it (from `plan_for`):
    the first request for a window computes all of them in one pass (per-active-user metrics share the window's
    activity scan; KPIs run only their own queries); without a plan each request computes what it names.
    """

    connection: Connection
    renewal_window_days: int = 14
    gross_margin: float = 0.8
    plan: dict[Window, set[str]] = field(default_factory=dict)
    _metrics: dict[tuple[str, Window], dict[str, Measurement]] = field(default_factory=dict)
    _kpis: dict[tuple[str, Window], dict[str, Measurement]] = field(default_factory=dict)

    def by_persona(self, metric: str, window: Window) -> dict[str, Measurement]:
        source, name = resolve_metric(metric)
        wanted = self.plan.get(window, set()) | {name}
        if source == "metric":
            if (name, window) not in self._metrics:
                names = sorted(n for n in wanted if resolve_metric(n)[0] == "metric")
                computed = window_summaries(
                    self.connection, names, window, renewal_window_days=self.renewal_window_days
                )
                for metric_name, summaries in computed.items():
                    self._metrics[(metric_name, window)] = {
                        p: _from_summary(m) for p, m in summaries.items() if p is not None
                    }
            return self._metrics[(name, window)]
        if (name, window) not in self._kpis:
            names = sorted(n for n in wanted if resolve_metric(n)[0] == "kpi")
            snapshot = compute_kpis(self.connection, window, gross_margin=self.gross_margin, only=names)
            for kpi in names:
                self._kpis[(kpi, window)] = {
                    p: _from_kpi(values[kpi]) for p, values in snapshot.personas.items()
                }
        return self._kpis[(name, window)]


def pooled(parts: list[dict[str, Measurement]]) -> dict[str, Measurement]:
    """Several windows of equal length as one baseline: sufficient statistics summed, values averaged by n.

    A trailing baseline of 28 days for a 7-day period is the four weeks before it, each measured like the period
    itself: per-active-user rates over 28 days are not comparable with rates over 7 (users active in a longer
    window are more, and each has more time to act), but four weekly rates are.
    """
    personas = sorted({p for part in parts for p in part})
    result = {}
    for persona in personas:
        present = [part[persona] for part in parts if persona in part and part[persona].value is not None]
        n = sum(m.n for m in present)
        if not present or n == 0:
            result[persona] = Measurement(None, n, None, "no value in the baseline windows")
            continue
        value = sum((m.value or 0.0) * m.n for m in present) / n
        stats = [m.statistic for m in present]
        statistic: Statistic | None = None
        binomials = [x for x in stats if isinstance(x, BinomialStatistic)]
        means = [x for x in stats if isinstance(x, MeanStatistic)]
        if len(binomials) == len(stats):
            statistic = BinomialStatistic(sum(x.n for x in binomials), sum(x.sum for x in binomials))
        elif len(means) == len(stats):
            statistic = MeanStatistic(
                sum(x.n for x in means), sum(x.sum for x in means), sum(x.sum_squares for x in means)
            )
        result[persona] = Measurement(value, n, statistic)
    return result


def _from_summary(summary: MetricSummary) -> Measurement:
    if summary.value is None or summary.numerator is None:
        return Measurement(None, summary.n, None, summary.reason)
    if summary.unit == "ratio" and summary.sum_squares == summary.numerator:
        return Measurement(summary.value, summary.n, BinomialStatistic(summary.n, summary.numerator))
    squares = summary.sum_squares if summary.sum_squares is not None else 0.0
    return Measurement(summary.value, summary.n, MeanStatistic(summary.n, summary.numerator, squares))


def _from_kpi(value: KpiValue) -> Measurement:
    if value.value is None:
        return Measurement(None, value.n, None, value.reason)
    if value.name == "nps":
        # NPS is 100 × the mean of +1 (promoter), 0, −1 (detractor): Σx = P − D, Σx² = P + D.
        promoters, detractors = int(value.extra.get("promoters", 0)), int(value.extra.get("detractors", 0))
        return Measurement(
            value.value, value.n, MeanStatistic(value.n, promoters - detractors, promoters + detractors)
        )
    definition = KPIS_BY_NAME[value.name]
    n = int(value.denominator if value.denominator is not None else value.n)
    if value.numerator is not None and n > 0:
        if definition.kind == "proportion" and 0 <= value.numerator <= n:
            return Measurement(value.value, value.n, BinomialStatistic(n, value.numerator))
        if definition.kind == "per_unit" and value.sum_squares is not None and value.name not in MEDIAN_KPIS:
            return Measurement(value.value, value.n, MeanStatistic(n, value.numerator, value.sum_squares))
    return Measurement(value.value, value.n)


MEDIAN_KPIS = frozenset({"support_resolution_time", "time_to_value_minutes"})
