"""Sufficient statistics of an experiment's metrics per variant, aggregated in SQL from the per-user values.

`experiment_statistics` first refreshes the users whose values are stale (experiment_units, which also keeps the
per-variant sums of their values up to date: experiment_sums), then reads: the stored sums of every metric (users
without a row add zero to every sum; n comes from the assignments), and for quantiles the count per variant from
the same rows plus one ranged read of the ordered values around the ranks the caller asks for. No event rows are
loaded into Python.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from store.models import ExperimentUnitValueRow
from store.repositories.experiment_sums import stored_sums
from store.repositories.experiment_units import SUM_KINDS, MetricQuery, refresh_unit_values
from store.repositories.experiments import assignment_counts

__all__ = ["GroupQuantile", "GroupStatistics", "GroupSums", "MetricQuery", "experiment_statistics"]


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
_SUM_FIELDS = ("sum", "sum_squares", "denominator_sum", "denominator_sum_squares", "main_denominator_sum_product",
               "covariate_sum", "covariate_sum_squares", "main_covariate_sum_product")  # fmt: skip


def experiment_statistics(
    connection: Connection,
    experiment_id: int,
    phase: int,
    metrics: Sequence[MetricQuery],
    *,
    rank_bounds: RankBounds,
    lookback_seconds: float = 0.0,
    groups: Mapping[int, int] | None = None,
    assigned: Mapping[int, int] | None = None,
) -> list[GroupStatistics]:
    """Per metric, per group (variant, or the level a variant maps to in `groups`), its sufficient statistics.

    `assigned` (units per variant) spares the count when the caller already has it.
    """
    refresh_unit_values(connection, experiment_id, phase, metrics, lookback_seconds=lookback_seconds)
    variants = dict(assigned) if assigned is not None else assignment_counts(connection, experiment_id, phase)
    group_of = dict(groups) if groups is not None else {v: v for v in variants}
    members: dict[int, list[int]] = defaultdict(list)
    for variant, group in group_of.items():
        members[group].append(variant)
    n_by_group: dict[int, int] = defaultdict(int)
    for variant, n in variants.items():
        if variant in group_of:
            n_by_group[group_of[variant]] += n
    keys = [m.key(lookback_seconds) for m in metrics]
    sums, counts = stored_sums(connection, experiment_id, phase, keys)
    results: list[GroupStatistics] = []
    for key, metric in zip(keys, metrics, strict=True):
        if metric.kind in SUM_KINDS:
            results.append({g: _group_sums(n, sums.get(key, {}), members[g]) for g, n in n_by_group.items()})
        else:
            results.append(
                _quantiles(
                    connection,
                    experiment_id,
                    phase,
                    key,
                    counts.get(key, {}),
                    members,
                    metric.quantile or 0.5,
                    rank_bounds,
                )
            )
    return results  # fmt: skip


def _group_sums(n: int, by_variant: Mapping[int, list[float]], variants: Sequence[int]) -> GroupSums:
    totals = [0.0] * len(_SUM_FIELDS)
    for variant in variants:
        for i, value in enumerate(by_variant.get(variant, ())):
            totals[i] += value
    return GroupSums(n, **dict(zip(_SUM_FIELDS, totals, strict=True)))


def _quantiles(
    connection: Connection,
    experiment_id: int,
    phase: int,
    key: str,
    counts: Mapping[int, int],
    members: Mapping[int, list[int]],
    quantile: float,
    rank_bounds: RankBounds,
) -> GroupStatistics:
    t = ExperimentUnitValueRow
    scope = (t.experiment_id == experiment_id, t.phase == phase, t.metric_key == key)
    found: GroupStatistics = {}
    for group, variants in members.items():
        n = sum(counts.get(v, 0) for v in variants)
        if n == 0:
            found[group] = GroupQuantile(0, None, None, None)
            continue
        lower, upper = rank_bounds(n, quantile)
        # Nearest rank ceil(n·q), rounded first: in floating point 100 × 0.07 = 7.000000000000001 would give 8.
        estimate_rank = min(n, max(1, math.ceil(round(n * quantile, 9))))
        first, last = min(lower, upper, estimate_rank), max(lower, upper, estimate_rank)
        # The ranks sit close together (± z·√(n·q·(1−q))): one read of that stretch of the ordered index.
        values = (
            connection.execute(
                select(t.value)
                .where(*scope, t.variant.in_(variants))
                .order_by(t.value)
                .offset(first - 1)
                .limit(last - first + 1)
            )
            .scalars()
            .all()
        )
        found[group] = GroupQuantile(
            n,
            float(values[estimate_rank - first]),
            float(values[lower - first]),
            float(values[upper - first]),
        )
    return found  # fmt: skip
