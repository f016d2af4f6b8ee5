"""Sufficient statistics of an experiment's metrics per variant, aggregated in SQL (never rows into Python).

Each exposed user counts from their first exposure (`assigned_at`) for the metric's window. One pass over the
exposed users' events yields every event metric (conversion, count/sum, ratio, CUPED pre-exposure covariate) with
conditional aggregation; quantiles and time to value need ranks, so they get two small queries each (counts, then
the order statistics at the ranks the caller asks for).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)

from store.models import EventRow, ExperimentAssignmentRow
from store.sql import JsonProperties, add_seconds, seconds_between

# Names that stand for a combination of real events: event → weight of each occurrence.
DERIVED_EVENTS: dict[str, dict[str, int]] = {
    "task_attempted": {"task_completed": 1, "task_failed": 1},
    "report_sent_uncorrected": {"report_sent": 1, "report_corrected": -1},
}
SIGNUP_EVENT, FIRST_VALUE_EVENT = "user_signed_up", "report_generated"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    kind: str  # conversion | mean | ratio | quantile | time_to_value
    window_seconds: float
    event: str | None = None
    property: str | None = None
    denominator_event: str | None = None
    denominator_property: str | None = None
    quantile: float | None = None
    covariate: bool = False  # also aggregate the same value over the pre-exposure lookback (CUPED)


@dataclass(frozen=True, slots=True)
class GroupSums:
    n: int
    sum: float
    sum_squares: float
    denominator_sum: float = 0.0
    denominator_sum_squares: float = 0.0
    main_denominator_sum_product: float = 0.0
    covariate_sum: float = 0.0
    covariate_sum_squares: float = 0.0
    main_covariate_sum_product: float = 0.0


@dataclass(frozen=True, slots=True)
class GroupQuantile:
    n: int
    estimate: float | None
    lower: float | None
    upper: float | None


GroupStatistics = dict[int, GroupSums | GroupQuantile]
RankBounds = Callable[[int, float], tuple[int, int]]


def experiment_statistics(
    connection: Connection,
    experiment_id: int,
    phase: int,
    metrics: Sequence[MetricQuery],
    *,
    rank_bounds: RankBounds,
    lookback_seconds: float = 0.0,
    groups: Mapping[int, int] | None = None,
) -> list[GroupStatistics]:
    """Per metric, per group (variant, or the level a variant maps to in `groups`), its sufficient statistics."""
    exposed = _exposed(experiment_id, phase, groups)
    results: list[GroupStatistics] = [{} for _ in metrics]
    event_metrics = [(i, m) for i, m in enumerate(metrics) if m.kind in ("conversion", "mean", "ratio")]
    if event_metrics:
        sums = _event_sums(connection, exposed, [m for _, m in event_metrics], lookback_seconds)
        for position, (index, _) in enumerate(event_metrics):
            results[index] = dict(sums[position])
    for index, metric in enumerate(metrics):
        if metric.kind in ("quantile", "time_to_value"):
            values = (
                _time_to_value_values(connection, exposed, metric)
                if metric.kind == "time_to_value"
                else _event_values(connection, exposed, metric)
            )
            results[index] = dict(_quantiles(connection, values, metric.quantile or 0.5, rank_bounds))
    return results


def _exposed(experiment_id: int, phase: int, groups: Mapping[int, int] | None) -> Subquery:
    table = ExperimentAssignmentRow
    group: Any = (
        table.variant
        if groups is None
        else case(*((table.variant == v, g) for v, g in groups.items()), else_=-1)
    )
    return (
        select(table.user_id, table.assigned_at, group.label("grp"))
        .where(table.experiment_id == experiment_id, table.phase == phase)
        .subquery("exposed")
    )


def _name_weight(event: str) -> ColumnElement[Any]:
    """1 (or the derived weight) for events that count as `event`, else 0."""
    weights = DERIVED_EVENTS.get(event, {event: 1})
    return case(*((EventRow.name == name, weight) for name, weight in weights.items()), else_=0)


def _names(metrics: Sequence[MetricQuery]) -> set[str]:
    names: set[str] = set()
    for metric in metrics:
        for event in (metric.event, metric.denominator_event):
            if event is not None:
                names.update(DERIVED_EVENTS.get(event, {event: 1}))
    return names


def _per_user_value(
    json: JsonProperties, event: str, prop: str | None, kind: str, in_window: ColumnElement[bool]
) -> ColumnElement[Any]:
    weight = _name_weight(event)
    if kind == "conversion":
        return func.max(case((and_(in_window, weight != 0), 1), else_=0))
    if prop is None:
        total = func.sum(case((in_window, weight), else_=0))
        return case((total < 0, 0), else_=total) if event in DERIVED_EVENTS else total
    return func.coalesce(func.sum(case((and_(in_window, EventRow.name == event), json.number(prop)))), 0.0)


def _event_sums(
    connection: Connection, exposed: Subquery, metrics: Sequence[MetricQuery], lookback_seconds: float
) -> list[dict[int, GroupSums]]:
    dialect = connection.dialect
    json = JsonProperties(dialect)
    longest = max(m.window_seconds for m in metrics)
    needs_covariate = any(m.covariate for m in metrics) and lookback_seconds > 0
    lower = (
        add_seconds(exposed.c.assigned_at, -lookback_seconds, dialect)
        if needs_covariate
        else exposed.c.assigned_at
    )
    join = and_(
        EventRow.user_id == exposed.c.user_id,
        EventRow.timestamp >= lower,
        EventRow.timestamp < add_seconds(exposed.c.assigned_at, longest, dialect),
        EventRow.name.in_(sorted(_names(metrics))),
    )
    after = EventRow.timestamp >= exposed.c.assigned_at
    columns: list[ColumnElement[Any]] = []
    for i, metric in enumerate(metrics):
        assert metric.event is not None
        in_window = and_(
            after, EventRow.timestamp < add_seconds(exposed.c.assigned_at, metric.window_seconds, dialect)
        )
        columns.append(
            _per_user_value(json, metric.event, metric.property, metric.kind, in_window).label(f"v{i}")
        )
        if metric.kind == "ratio":
            assert metric.denominator_event is not None
            denominator = _per_user_value(
                json, metric.denominator_event, metric.denominator_property, "mean", in_window
            )
            columns.append(denominator.label(f"d{i}"))
        if metric.covariate and needs_covariate:
            columns.append(
                _per_user_value(json, metric.event, metric.property, metric.kind, ~after).label(f"c{i}")
            )
    per_user = (
        select(exposed.c.grp, *columns)
        .select_from(exposed.outerjoin(EventRow, join))
        .group_by(exposed.c.user_id, exposed.c.grp, exposed.c.assigned_at)
        .subquery("per_user")
    )
    aggregates: list[ColumnElement[Any]] = [func.count()]
    layout: list[list[str]] = []
    for i, metric in enumerate(metrics):
        v = cast(func.coalesce(per_user.c[f"v{i}"], 0), Float)
        parts = [v]
        names = ["sum", "sum_squares"]
        aggregates += [func.sum(v), func.sum(v * v)]
        if metric.kind == "ratio":
            d = cast(func.coalesce(per_user.c[f"d{i}"], 0), Float)
            aggregates += [func.sum(d), func.sum(d * d), func.sum(v * d)]
            names += ["denominator_sum", "denominator_sum_squares", "main_denominator_sum_product"]
            parts.append(d)
        if metric.covariate and needs_covariate:
            c = cast(func.coalesce(per_user.c[f"c{i}"], 0), Float)
            aggregates += [func.sum(c), func.sum(c * c), func.sum(v * c)]
            names += ["covariate_sum", "covariate_sum_squares", "main_covariate_sum_product"]
        layout.append(names)
    rows = connection.execute(select(per_user.c.grp, *aggregates).group_by(per_user.c.grp)).all()
    results: list[dict[int, GroupSums]] = [{} for _ in metrics]
    for row in rows:
        group, n, values = int(row[0]), int(row[1]), [float(x or 0.0) for x in row[2:]]
        offset = 0
        for i, names in enumerate(layout):
            chunk = values[offset : offset + len(names)]
            offset += len(names)
            results[i][group] = GroupSums(n=n, **dict(zip(names, chunk, strict=True)))
    return results


def _event_values(connection: Connection, exposed: Subquery, metric: MetricQuery) -> Subquery:
    """One row per exposed user with a value: (grp, the user's mean of the numeric property in the window).

    One value per user, not per event: the order-statistics interval assumes independent values, and a user's
    events are not independent of each other (a heavy user would otherwise narrow the interval falsely).
    """
    assert metric.event is not None and metric.property is not None
    dialect = connection.dialect
    value = JsonProperties(dialect).number(metric.property)
    return (
        select(exposed.c.grp, func.avg(value).label("value"))
        .select_from(exposed.join(EventRow, EventRow.user_id == exposed.c.user_id))
        .where(
            EventRow.name == metric.event,
            EventRow.timestamp >= exposed.c.assigned_at,
            EventRow.timestamp < add_seconds(exposed.c.assigned_at, metric.window_seconds, dialect),
            value.is_not(None),
        )
        .group_by(exposed.c.user_id, exposed.c.grp)
        .subquery("metric_values")
    )


def _time_to_value_values(connection: Connection, exposed: Subquery, metric: MetricQuery) -> Subquery:
    """Seconds from signup to first report, for exposed users whose first report came within the window.

    One pass: the user's group and exposure ride along in the GROUP BY, so nothing joins back to the assignments
    (a second join made PostgreSQL pick a quadratic nested loop before the tables were analysed).
    """
    dialect = connection.dialect
    end = add_seconds(exposed.c.assigned_at, metric.window_seconds, dialect)
    firsts = (
        select(
            exposed.c.grp,
            exposed.c.assigned_at,
            func.min(case((EventRow.name == SIGNUP_EVENT, EventRow.timestamp))).label("signed_up"),
            func.min(case((EventRow.name == FIRST_VALUE_EVENT, EventRow.timestamp))).label("first_value"),
        )
        .select_from(exposed.join(EventRow, EventRow.user_id == exposed.c.user_id))
        .where(
            EventRow.name.in_((SIGNUP_EVENT, FIRST_VALUE_EVENT)),
            # Events after the window cannot decide (a qualifying first report lies inside it, its signup before
            # it), and the bound lets the (user_id, timestamp) index serve the join as a range: without it
            # PostgreSQL, before statistics exist, ANDed the name index into every per-user probe (quadratic).
            EventRow.timestamp < end,
        )
        .group_by(exposed.c.user_id, exposed.c.grp, exposed.c.assigned_at)
        .subquery("firsts")
    )
    return (
        select(
            firsts.c.grp, seconds_between(firsts.c.first_value, firsts.c.signed_up, dialect).label("value")
        )
        .where(
            firsts.c.signed_up.is_not(None),
            firsts.c.first_value >= firsts.c.assigned_at,
            firsts.c.first_value < add_seconds(firsts.c.assigned_at, metric.window_seconds, dialect),
            firsts.c.first_value >= firsts.c.signed_up,
        )
        .subquery("metric_values")
    )


def _quantiles(
    connection: Connection, values: Subquery, quantile: float, rank_bounds: RankBounds
) -> dict[int, GroupQuantile]:
    counts = {
        int(g): int(n)
        for g, n in connection.execute(select(values.c.grp, func.count()).group_by(values.c.grp))
    }
    wanted: dict[int, tuple[int, int, int]] = {}
    for group, n in counts.items():
        if n == 0:
            continue
        lower, upper = rank_bounds(n, quantile)
        # Nearest rank ceil(n·q), rounded first: in floating point 100 × 0.07 = 7.000000000000001 would give 8.
        estimate_rank = min(n, max(1, math.ceil(round(n * quantile, 9))))
        wanted[group] = (int(estimate_rank), lower, upper)
    if not wanted:
        return {g: GroupQuantile(n, None, None, None) for g, n in counts.items()}
    rank = func.row_number().over(partition_by=values.c.grp, order_by=values.c.value).label("rank")
    ranked = select(values.c.grp, values.c.value, rank).subquery("ranked")
    selectors = [and_(ranked.c.grp == g, ranked.c.rank.in_(set(r))) for g, r in wanted.items()]
    found: dict[tuple[int, int], float] = {}
    for group, position, value in connection.execute(
        select(ranked.c.grp, ranked.c.rank, ranked.c.value).where(or_(*selectors, literal(False)))
    ):
        found[(int(group), int(position))] = float(value)
    return {
        group: GroupQuantile(
            n,
            found.get((group, wanted[group][0])) if group in wanted else None,
            found.get((group, wanted[group][1])) if group in wanted else None,
            found.get((group, wanted[group][2])) if group in wanted else None,
        )
        for group, n in counts.items()
    }
