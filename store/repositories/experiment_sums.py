"""Per-variant unit counts and sums of the kept unit values (experiment_variant_sums), kept by deltas.

Analysis needs, per metric and variant, only the count of unit rows and eight sums (Σv, Σv², Σd, Σd², Σv·d, Σc,
Σc², Σv·c). Aggregating them from experiment_unit_values reads every unit row of the phase (about a second at a
million users), so a refresh chunk instead totals its claimed users' rows before and after it replaces them and
adds the difference, in the same transaction. Claims give each user to one refresh at a time
(experiment_units.claim_dirty_users), so concurrent refreshes add disjoint differences.

The invariant: for a (phase, metric) either no sums rows exist, or they equal the totals of its unit rows (up to
floating-point rounding of the deltas; relative error far below what the statistics can show). Where no sums
rows exist but unit rows do (a database migrated while a refresh was in flight, rows removed by hand), the sums
are rebuilt from the unit rows once, before any delta is added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, case, delete, func, literal, select

from store.models import ExperimentUnitValueRow, ExperimentVariantSumsRow
from store.sql import insert_for, scan_left_first

# The eight sums, in the order analysis (experiment_stats.GroupSums) takes them.
SUM_COLUMNS = (
    "value_sum", "value_sum_squares", "denominator_sum", "denominator_sum_squares", "value_denominator_sum",
    "covariate_sum", "covariate_sum_squares", "value_covariate_sum",
)  # fmt: skip
_KEY_COLUMNS = ("experiment_id", "phase", "metric_key", "variant")
# (metric key, variant) → [units, the eight sums]
Totals = dict[tuple[str, int], list[float]]


def _aggregates() -> list[ColumnElement[Any]]:
    t = ExperimentUnitValueRow
    v, d, c = t.value, t.denominator, t.covariate
    return [func.count(), func.sum(v), func.sum(v * v), func.sum(d), func.sum(d * d), func.sum(v * d),
            func.sum(c), func.sum(c * c), func.sum(v * c)]  # fmt: skip


def claimed_totals(connection: Connection, experiment_id: int, phase: int, claimed_users: Any) -> Totals:
    """Units and sums of the claimed users' unit rows, per (metric key, variant)."""
    rows = connection.execute(claimed_totals_select(experiment_id, phase, claimed_users))
    return {(key, int(variant)): [float(x or 0) for x in totals] for key, variant, *totals in rows}


def claimed_totals_select(experiment_id: int, phase: int, claimed_users: Any) -> Select[Any]:
    """What `claimed_totals` reads: a probe of the unit rows' primary key per claimed user (`claimed_users`: a
    table with a user_id column)."""
    t = ExperimentUnitValueRow
    return (
        select(t.metric_key, t.variant, *_aggregates())
        .select_from(scan_left_first(claimed_users, t, claimed_users.c.user_id == t.user_id))
        .where(t.experiment_id == experiment_id, t.phase == phase)
        .group_by(t.metric_key, t.variant)
    )


def add_difference(
    connection: Connection, experiment_id: int, phase: int, before: Totals, after: Totals
) -> None:
    """Add `after` − `before` to the stored sums (one upsert, rows in key order so concurrent refreshes lock the
    sums rows in the same order). A variant whose units drop to 0 gets exact zeros, not rounding residue."""
    changes = []
    for key, variant in sorted(before.keys() | after.keys()):
        old = before.get((key, variant), [0.0] * 9)
        new = after.get((key, variant), [0.0] * 9)
        difference = [n - o for n, o in zip(new, old, strict=True)]
        if any(difference):
            totals = dict(zip(SUM_COLUMNS, difference[1:], strict=True))
            changes.append({"experiment_id": experiment_id, "phase": phase, "metric_key": key,
                            "variant": variant, "units": int(difference[0]), **totals})  # fmt: skip
    if not changes:
        return
    statement = insert_for(connection, ExperimentVariantSumsRow).values(changes)
    stored, excluded = ExperimentVariantSumsRow.__table__.c, statement.excluded
    emptied = stored.units + excluded.units == 0
    updates: dict[str, Any] = {"units": stored.units + excluded.units}
    for name in SUM_COLUMNS:
        updates[name] = case((emptied, 0.0), else_=stored[name] + excluded[name])
    connection.execute(statement.on_conflict_do_update(index_elements=list(_KEY_COLUMNS), set_=updates))


def forget_sums(connection: Connection, experiment_id: int, phase: int, keys: Iterable[str]) -> None:
    """Drop the sums of these metrics (a metric registered anew starts from its unit rows)."""
    s = ExperimentVariantSumsRow
    chosen = sorted(set(keys))
    if chosen:
        connection.execute(
            delete(s).where(s.experiment_id == experiment_id, s.phase == phase, s.metric_key.in_(chosen))
        )


def ensure_sums(connection: Connection, experiment_id: int, phase: int, keys: Iterable[str]) -> list[str]:
    """Rebuild the sums of metrics that have unit rows but no sums rows; returns the keys rebuilt.

    One probe of the sums' primary key for all keys, then for each key without sums one probe of the unit rows'
    covering index (usually a metric whose users all have zeros, or one not computed yet: nothing to rebuild).
    """
    s, t = ExperimentVariantSumsRow, ExperimentUnitValueRow
    wanted = sorted(set(keys))
    if not wanted:
        return []
    present = set(
        connection.execute(
            select(s.metric_key)
            .distinct()
            .where(s.experiment_id == experiment_id, s.phase == phase, s.metric_key.in_(wanted))
        ).scalars()
    )
    rebuilt = []
    for key in (k for k in wanted if k not in present):
        scope = (t.experiment_id == experiment_id, t.phase == phase, t.metric_key == key)
        if connection.execute(select(literal(1)).where(*scope).limit(1)).first() is None:
            continue
        rows = _totals_select(experiment_id, phase, key)
        statement = insert_for(connection, s).from_select([*_KEY_COLUMNS, "units", *SUM_COLUMNS], rows)
        # Another refresh may have rebuilt the same key meanwhile; its rows stand (both come from the same rows).
        connection.execute(statement.on_conflict_do_nothing(index_elements=list(_KEY_COLUMNS)))
        rebuilt.append(key)
    return rebuilt


def _totals_select(experiment_id: int, phase: int, key: str) -> Select[Any]:
    """The sums of one metric's unit rows per variant, from the covering index (the only full read)."""
    t = ExperimentUnitValueRow
    return (
        select(literal(experiment_id), literal(phase), t.metric_key, t.variant, *_aggregates())
        .where(t.experiment_id == experiment_id, t.phase == phase, t.metric_key == key)
        .group_by(t.metric_key, t.variant)
        .order_by(t.variant)
    )


def stored_sums(
    connection: Connection, experiment_id: int, phase: int, keys: Sequence[str]
) -> tuple[dict[str, dict[int, list[float]]], dict[str, dict[int, int]]]:
    """metric key → variant → the eight sums, and → unit rows; a few rows of experiment_variant_sums."""
    if not keys:
        return {}, {}
    s = ExperimentVariantSumsRow
    columns = [s.__table__.c[name] for name in SUM_COLUMNS]
    rows = connection.execute(
        select(s.metric_key, s.variant, s.units, *columns).where(
            s.experiment_id == experiment_id, s.phase == phase, s.metric_key.in_(sorted(set(keys)))
        )
    )
    sums: dict[str, dict[int, list[float]]] = {}
    counts: dict[str, dict[int, int]] = {}
    for key, variant, units, *totals in rows:
        sums.setdefault(key, {})[int(variant)] = [float(x) for x in totals]
        counts.setdefault(key, {})[int(variant)] = int(units)
    return sums, counts


def fresh_sums(
    connection: Connection, experiment_id: int, phase: int, keys: Sequence[str]
) -> tuple[dict[str, dict[int, list[float]]], dict[str, dict[int, int]]]:
    """The same as `stored_sums`, aggregated from every unit row (tests compare the two)."""
    t = ExperimentUnitValueRow
    rows = connection.execute(
        select(t.metric_key, t.variant, *_aggregates())
        .where(t.experiment_id == experiment_id, t.phase == phase, t.metric_key.in_(sorted(set(keys))))
        .group_by(t.metric_key, t.variant)
    )
    sums: dict[str, dict[int, list[float]]] = {}
    counts: dict[str, dict[int, int]] = {}
    for key, variant, count, *totals in rows:
        sums.setdefault(key, {})[int(variant)] = [float(x or 0.0) for x in totals]
        counts.setdefault(key, {})[int(variant)] = int(count)
    return sums, counts


__all__ = [
    "SUM_COLUMNS",
    "Totals",
    "add_difference",
    "claimed_totals",
    "claimed_totals_select",
    "ensure_sums",
    "forget_sums",
    "fresh_sums",
    "stored_sums",
]
