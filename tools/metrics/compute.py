"""Metric reports: per persona, now vs the previous window of equal length, with change, p-value and a daily
series. Units are aggregated in SQL (store.repositories.metrics and .active_users); tests and intervals come from
tools.stats.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy import Connection, FromClause, Subquery

from store.repositories import active_users as active_sql
from store.repositories import metrics as metric_sql
from tools.metrics.model import DailyPoint, MetricCategory, MetricComparison, MetricReport, MetricSummary
from tools.stats import AnalysisSettings, BinomialStatistic, MeanStatistic, Statistic, compare
from tools.stats.intervals import mean_interval, proportion_interval
from tools.window import Window

Kind = Literal["duration", "proportion", "per_user", "value"]
DAYS_PER_MONTH = 30


@dataclass(frozen=True, slots=True)
class MetricSpec:
    unit: str
    kind: Kind
    higher_is_better: bool | None
    empty_reason: str
    event_name: str | None = None  # per_user metrics: the event counted per active user
    per_days: int | None = None  # per_user metrics scaled to this many days (support incidents: per 30 days)


METRIC_SPECS: dict[str, MetricSpec] = {
    MetricCategory.TIME_TO_VALUE: MetricSpec(
        "seconds", "duration", False, "no user reached a first report in the window"
    ),
    MetricCategory.REPORT_ACCURACY: MetricSpec("ratio", "proportion", True, "no reports were sent in the window"),
    MetricCategory.RENEWAL_SUCCESS: MetricSpec(
        "ratio", "proportion", True, "no renewal outcome was decided in the window"
    ),
    MetricCategory.ERROR_RATE: MetricSpec(
        "errors_per_active_user", "per_user", False, "no active users in the window", event_name="error_occurred"
    ),
    MetricCategory.SUPPORT_INCIDENTS: MetricSpec(
        "tickets_per_active_user_30d", "per_user", False, "no active users in the window",
        event_name="support_ticket_opened", per_days=DAYS_PER_MONTH,
    ),
}  # fmt: skip
METRIC_ALIASES = {"ttv": "time_to_value", "errors": "error_rate", "support_load": "support_incidents"}


def spec_for(metric: str) -> MetricSpec:
    """Known metrics have a definition; any other name is a custom metric of explicit observations."""
    return METRIC_SPECS.get(metric) or MetricSpec(
        "value", "value", None, f"no observations of {metric!r} in the window"
    )


def metric_report(
    connection: Connection,
    metric: str,
    window: Window,
    *,
    persona: str | None = None,
    renewal_window_days: int = 14,
    alpha: float = 0.05,
) -> MetricReport:
    return metric_reports(
        connection, [metric], window, persona=persona, renewal_window_days=renewal_window_days, alpha=alpha
    )[0]


def metric_reports(
    connection: Connection,
    metrics: Sequence[str],
    window: Window,
    *,
    persona: str | None = None,
    renewal_window_days: int = 14,
    alpha: float = 0.05,
) -> list[MetricReport]:
    """Several metrics over one window and its previous window; the per-active-user metrics share their inputs
    (store.repositories.active_users.ActivityTables)."""
    with active_sql.activity_tables(connection) as activity:
        return [
            _report(connection, activity, name, window, persona, renewal_window_days, alpha)
            for name in metrics
        ]


def window_summaries(
    connection: Connection,
    metrics: Sequence[str],
    window: Window,
    *,
    renewal_window_days: int = 14,
) -> dict[str, dict[str | None, MetricSummary]]:
    """Each metric over one window only, per persona (None = everyone): no previous window, no daily series.

    What an escalation check needs for each window it compares; the per-active-user metrics share their inputs.
    """
    summaries: dict[str, dict[str | None, MetricSummary]] = {}
    with active_sql.activity_tables(connection) as activity:
        for name in metrics:
            metric = METRIC_ALIASES.get(name, name)
            spec = spec_for(metric)
            context = _Context(connection, activity, metric, spec, renewal_window_days)
            [aggregates], _ = _aggregates(context, [window], daily=False)
            summaries[name] = {
                key: _summary(metric, spec, window, key, aggregate) for key, aggregate in aggregates.items()
            }
    return summaries


def _report(
    connection: Connection,
    activity: active_sql.ActivityTables,
    metric: str,
    window: Window,
    persona: str | None,
    renewal_window_days: int,
    alpha: float,
) -> MetricReport:
    metric = METRIC_ALIASES.get(metric, metric)
    spec = spec_for(metric)
    context = _Context(connection, activity, metric, spec, renewal_window_days)
    (previous, current), daily = _aggregates(context, [window.previous(), window], daily=True)
    personas = sorted({p for p in current if p is not None} | {p for p in previous if p is not None})
    if persona is not None:
        personas = [persona]

    def comparison(key: str | None) -> MetricComparison:
        now = _summary(metric, spec, window, key, current.get(key))
        before = _summary(metric, spec, window.previous(), key, previous.get(key))
        return _compare(spec, now, before, current.get(key), previous.get(key), daily.get(key, ()), alpha)

    return MetricReport(
        metric=metric,
        window=window,
        higher_is_better=bool(spec.higher_is_better),
        overall=comparison(None),
        personas={key: comparison(key) for key in personas},
    )


@dataclass(frozen=True, slots=True)
class _Context:
    connection: Connection
    activity: active_sql.ActivityTables
    metric: str
    spec: MetricSpec
    wait_days: int


def _units(context: _Context, windows: Sequence[Window]) -> Subquery:
    """The units of each of `windows` (consecutive, oldest first), with the window's index in `window_index`."""
    dialect, metric, spec = context.connection.dialect, context.metric, context.spec
    if metric == MetricCategory.TIME_TO_VALUE:  # all windows in one statement: one pass over their reports
        return metric_sql.time_to_value_window_units(dialect, [windows[0].start, *(w.end for w in windows)])
    each: list[Subquery] = []
    for window in windows:
        start, end = window.start, window.end
        if metric == MetricCategory.REPORT_ACCURACY:
            each.append(metric_sql.report_accuracy_units(dialect, start, end))
        elif metric == MetricCategory.RENEWAL_SUCCESS:
            each.append(metric_sql.renewal_units(dialect, start, end, context.wait_days))
        elif spec.kind == "per_user" and spec.event_name:
            each.append(active_sql.per_active_user_units(context.activity.users(start, end), spec.event_name))
        else:
            each.append(metric_sql.custom_units(metric, start, end))
    return metric_sql.indexed_units(each)


def _aggregates(
    context: _Context, windows: Sequence[Window], *, daily: bool
) -> tuple[list[dict[str | None, metric_sql.UnitAggregate]], dict[str | None, tuple[DailyPoint, ...]]]:
    """Per window, the aggregates of its units, and the last window's daily series when asked. The units of all
    the windows are computed once, into one temporary table, and every aggregate reads that table instead of
    re-running the units query."""
    connection, spec = context.connection, context.spec
    percentiles = spec.kind in ("duration", "value")
    with metric_sql.materialized(connection, _units(context, windows)) as units:
        sides = [metric_sql.window_units(units, index) for index in range(len(windows))]
        aggregates = []
        for side in sides:
            rows = metric_sql.aggregate_units(connection, side, percentiles=percentiles)
            aggregates.append({row.persona: row for row in rows})
        series = _daily(context, windows[-1], sides[-1]) if daily else {}
    return aggregates, series


def _daily(context: _Context, window: Window, units: FromClause) -> dict[str | None, tuple[DailyPoint, ...]]:
    connection, spec = context.connection, context.spec
    if spec.kind == "per_user" and spec.event_name:
        day_table = context.activity.days(window.start, window.end)
        rows = active_sql.daily_event_rate(connection, day_table, spec.event_name)
    else:
        rows = metric_sql.daily_units(connection, units)
    by_key: dict[str | None, dict[date, metric_sql.DailyAggregate]] = defaultdict(dict)
    for row in rows:
        by_key[row.persona][date.fromisoformat(row.day)] = row
    scale = _scale(spec, 1.0)
    series: dict[str | None, tuple[DailyPoint, ...]] = {}
    for key, days in by_key.items():
        points = []
        for day in window.dates():
            found = days.get(day)
            value = found.total / found.n * scale if found is not None and found.n else None
            points.append(DailyPoint(day, found.n if found is not None else 0, value))
        series[key] = tuple(points)
    return series


def _scale(spec: MetricSpec, window_days: float) -> float:
    """Per-user rates over a whole window are scaled to `per_days` (a daily point covers one day)."""
    return spec.per_days / window_days if spec.per_days else 1.0


def _summary(
    metric: str,
    spec: MetricSpec,
    window: Window,
    persona: str | None,
    aggregate: metric_sql.UnitAggregate | None,
) -> MetricSummary:
    if aggregate is None or aggregate.n == 0:
        return MetricSummary(metric, persona, window, spec.unit, 0, None, reason=spec.empty_reason)
    n, total, squares = aggregate.n, aggregate.total, aggregate.total_squares
    mean = total / n
    if spec.kind == "proportion":
        return MetricSummary(metric, persona, window, spec.unit, n, mean, mean=mean, rate=mean,
                             rate_ci=proportion_interval(total, n), numerator=total, sum_squares=squares)  # fmt: skip
    if spec.kind == "per_user":
        scale = _scale(spec, window.days)
        interval = mean_interval(n, total, squares)
        scaled_interval = (interval[0] * scale, interval[1] * scale) if interval else None
        rate = mean * scale
        return MetricSummary(metric, persona, window, spec.unit, n, rate, mean=rate, rate=rate,
                             rate_ci=scaled_interval, numerator=total, sum_squares=squares)  # fmt: skip
    return MetricSummary(metric, persona, window, spec.unit, n, mean, mean=mean, p50=aggregate.p50,
                         p90=aggregate.p90, numerator=total, sum_squares=squares)  # fmt: skip


def _statistic(spec: MetricSpec, aggregate: metric_sql.UnitAggregate) -> Statistic:
    if spec.kind == "proportion" and aggregate.total_squares == aggregate.total:
        return BinomialStatistic(aggregate.n, aggregate.total)
    return MeanStatistic(aggregate.n, aggregate.total, aggregate.total_squares)


def _compare(
    spec: MetricSpec,
    now: MetricSummary,
    before: MetricSummary,
    current: metric_sql.UnitAggregate | None,
    previous: metric_sql.UnitAggregate | None,
    daily: tuple[DailyPoint, ...],
    alpha: float,
) -> MetricComparison:
    if current is None or previous is None or now.value is None or before.value is None:
        return MetricComparison(now, before, None, None, False, None, daily)
    result = compare(_statistic(spec, previous), [_statistic(spec, current)], AnalysisSettings(alpha=alpha))[
        0
    ]
    change = now.value / before.value - 1 if before.value else None
    significant = result.p_value is not None and result.p_value < alpha
    improved = None
    if significant and spec.higher_is_better is not None and result.effect is not None:
        improved = (result.effect > 0) == spec.higher_is_better
    return MetricComparison(now, before, change, result.p_value, significant, improved, daily)
