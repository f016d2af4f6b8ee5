"""Per-user experiment metric values, kept up to date incrementally.

Ingestion marks an assigned user dirty (per experiment) in the same transaction that stores the user's new events;
assignment marks the users it draws. A refresh claims dirty users in chunks, recomputes their values of every
metric the experiment phase keeps, and replaces their rows in experiment_unit_values. Analysis then aggregates
those rows (see experiment_stats), so its cost follows the users who changed, not all users ever exposed.

A metric seen for the first time marks every exposed user of the phase dirty, so its values are complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    Subquery,
    and_,
    case,
    cast,
    column,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy import table as sql_table

from store.database import Database
from store.models import (
    EventRow,
    ExperimentAssignmentRow,
    ExperimentDirtyUserRow,
    ExperimentMetricStateRow,
    ExperimentUnitValueRow,
)
from store.repositories.experiment_sums import add_difference, claimed_totals, ensure_sums, forget_sums
from store.repositories.metrics import materialized
from store.sql import (
    JsonProperties,
    add_seconds,
    index_probe_joins,
    insert_for,
    scan_left_first,
    seconds_between,
)

# Names that stand for a combination of real events: event → weight of each occurrence.
DERIVED_EVENTS: dict[str, dict[str, int]] = {
    "task_attempted": {"task_completed": 1, "task_failed": 1},
    "report_sent_uncorrected": {"report_sent": 1, "report_corrected": -1},
}
SIGNUP_EVENT, FIRST_VALUE_EVENT = "user_signed_up", "report_generated"
SUM_KINDS = ("conversion", "mean", "ratio")
REFRESH_CHUNK_USERS = 20_000
# After recomputing this many users the kept values changed enough for PostgreSQL's statistics to mislead it.
LARGE_REFRESH_USERS = 50_000
_CLAIMED = "fl_claimed_users"  # a temporary table per connection: the users one refresh chunk recomputes
CLAIMED_USERS = sql_table(_CLAIMED, column("user_id"))


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

    def key(self, lookback_seconds: float) -> str:
        """Identifies the per-user values this metric needs (the quantile level does not change them)."""
        identity = {**asdict(self), "quantile": None, "lookback": lookback_seconds if self.covariate else 0.0}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def mark_assigned_users_dirty(connection: Connection, user_ids: Sequence[str]) -> None:
    """Ingestion's reaction: every experiment these users are assigned to must recompute them."""
    if not user_ids:
        return
    table = ExperimentAssignmentRow
    chosen = (
        select(table.experiment_id, table.user_id)
        .where(table.user_id.in_(sorted(set(user_ids))))
        .order_by(table.experiment_id, table.user_id)  # one lock order for concurrent writers
    )
    connection.execute(_mark_rows(connection).from_select(["experiment_id", "user_id"], chosen))


def mark_dirty(connection: Connection, experiment_id: int, user_ids: Sequence[str]) -> None:
    rows = [{"experiment_id": experiment_id, "user_id": u} for u in sorted(set(user_ids))]
    for start in range(0, len(rows), 2_000):
        connection.execute(_mark_rows(connection).values(rows[start : start + 2_000]))


def _mark_rows(connection: Connection) -> Any:
    """Insert dirty marks; an existing mark is touched (a no-op update), not skipped, so it is locked until this
    transaction ends: a refresh claiming it (FOR UPDATE SKIP LOCKED) then skips the user, or has claimed it first
    and this waits, then marks the user anew. With DO NOTHING a refresh could claim the mark and recompute the user
    without the events this transaction is storing, and nothing would mark the user again."""
    statement = insert_for(connection, ExperimentDirtyUserRow)
    return statement.on_conflict_do_update(
        index_elements=["experiment_id", "user_id"], set_={"user_id": statement.excluded.user_id}
    )


def dirty_count(connection: Connection, experiment_id: int) -> int:
    table = ExperimentDirtyUserRow
    return int(
        connection.execute(select(func.count()).where(table.experiment_id == experiment_id)).scalar_one()
    )


def update_planner_statistics(connection: Connection) -> None:
    """ANALYZE the experiment tables on PostgreSQL after a large refresh.

    Autovacuum would get there eventually (and never, on servers that run without it); until then the planner
    prices the aggregation over a table it believes empty and picks sorts over the covering index.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE experiment_unit_values, experiment_assignments")


def vacuum_after_bulk_refresh(database: Database) -> None:
    """PostgreSQL: VACUUM (ANALYZE) the per-user values after a refresh rewrote many of them.

    ANALYZE alone gives the planner its row counts, but until a VACUUM sets the visibility map, every
    index-only scan of the rewritten values visits the heap for each row. The analysis reads quantiles that way.
    At a million users, a repeat analysis took 1.17 s before a vacuum and 0.37 s after (bench/experiments.py).
    Autovacuum gets there eventually, or never on a server that runs without it. VACUUM cannot run inside a
    transaction, hence the autocommit connection; its lock lets reads and writes go on.
    """
    if database.dialect != "postgresql":
        return
    with database.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.exec_driver_sql("VACUUM (ANALYZE) experiment_unit_values")
        autocommit.exec_driver_sql("ANALYZE experiment_assignments")


def refresh_unit_values(
    connection: Connection,
    experiment_id: int,
    phase: int,
    metrics: Sequence[MetricQuery],
    *,
    lookback_seconds: float = 0.0,
    max_users: int | None = None,
) -> int:
    """Recompute up to `max_users` dirty users (all when None) for every kept metric; returns how many."""
    kept = kept_metrics(connection, experiment_id, phase, metrics, lookback_seconds)
    ensure_sums(connection, experiment_id, phase, kept)
    refreshed = 0
    while max_users is None or refreshed < max_users:
        limit = REFRESH_CHUNK_USERS if max_users is None else min(REFRESH_CHUNK_USERS, max_users - refreshed)
        claimed = claim_dirty_users(connection, experiment_id, limit)
        if claimed == 0:
            break
        _recompute(connection, experiment_id, phase, kept, lookback_seconds)
        refreshed += claimed
    return refreshed


def kept_metrics(
    connection: Connection, experiment_id: int, phase: int, metrics: Sequence[MetricQuery], lookback: float
) -> dict[str, MetricQuery]:
    """Every metric the phase keeps values for, registering new ones (and marking all users for them)."""
    table = ExperimentMetricStateRow
    rows = connection.execute(
        select(table.metric_key, table.definition).where(
            table.experiment_id == experiment_id, table.phase == phase
        )
    ).all()
    kept = {key: MetricQuery(**definition) for key, definition in rows}
    new = {m.key(lookback): m for m in metrics if m.key(lookback) not in kept}
    if new:
        connection.execute(
            insert(table),
            [{"experiment_id": experiment_id, "phase": phase, "metric_key": key, "definition": asdict(metric)}
             for key, metric in new.items()],
        )  # fmt: skip
        assigned = ExperimentAssignmentRow
        everyone = select(assigned.experiment_id, assigned.user_id).where(
            assigned.experiment_id == experiment_id, assigned.phase == phase
        )
        connection.execute(_mark_rows(connection).from_select(["experiment_id", "user_id"], everyone))
        # Sums left by a forgotten state would not match the values about to be computed: ensure_sums rebuilds.
        forget_sums(connection, experiment_id, phase, new)
        kept.update(new)
    return kept


def claim_dirty_users(connection: Connection, experiment_id: int, limit: int) -> int:
    """Move up to `limit` dirty users of the experiment into the connection's claimed-users table.

    A user is claimed by one transaction at a time: on PostgreSQL the dirty rows are locked as they are chosen,
    skipping rows another refresh holds (READ COMMITTED would otherwise let two refreshes choose the same user,
    and the second apply its change to the per-variant sums again). A concurrent analysis so reads the values
    of the users a worker chunk holds as last committed; SQLite runs one writer at a time.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_CLAIMED} (user_id text PRIMARY KEY) ON COMMIT DELETE ROWS"
        )
    else:
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_CLAIMED} (user_id TEXT PRIMARY KEY)"
        )
    connection.exec_driver_sql(f"DELETE FROM {_CLAIMED}")  # nosec B608  # a constant table name
    dirty = ExperimentDirtyUserRow
    chosen = (
        select(dirty.user_id)
        .where(dirty.experiment_id == experiment_id)
        .order_by(dirty.user_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    compiled = chosen.compile(connection, compile_kwargs={"literal_binds": True})
    connection.exec_driver_sql(f"INSERT INTO {_CLAIMED} (user_id) {compiled}")
    # bandit B608: an int id, literal-bound by SQLAlchemy
    claimed = connection.exec_driver_sql(f"SELECT count(*) FROM {_CLAIMED}").scalar_one()  # nosec B608
    if claimed and connection.dialect.name == "postgresql":
        # Autovacuum never analyses temporary tables: without a row count PostgreSQL plans the joins below
        # (delete, recompute) as if the chunk were tiny or huge, and picked scans of every kept value.
        connection.exec_driver_sql(f"ANALYZE {_CLAIMED}")
    if claimed:
        connection.exec_driver_sql(
            # bandit B608: int() id and a constant table name
            f"DELETE FROM experiment_dirty_users WHERE experiment_id = {int(experiment_id)} "  # nosec B608
            f"AND user_id IN (SELECT user_id FROM {_CLAIMED})"
        )
    return int(claimed)


def _claimed_exposed(experiment_id: int, phase: int) -> Subquery:
    table = ExperimentAssignmentRow
    return (
        select(table.user_id, table.assigned_at, table.variant)
        .select_from(scan_left_first(CLAIMED_USERS, table, CLAIMED_USERS.c.user_id == table.user_id))
        .where(table.experiment_id == experiment_id, table.phase == phase)
        .subquery("exposed")
    )


def recompute_sources(
    connection: Connection, experiment_id: int, phase: int, kept: Mapping[str, MetricQuery], lookback: float
) -> tuple[Select[Any] | None, dict[str, Select[Any]]]:
    """What a refresh chunk reads from the events for the claimed users: one per-user pass for every sum metric
    (user_id, variant, v_i, d_i, c_i in the order of the sum metrics in `kept`), and one select per quantile
    metric (user_id, variant, value)."""
    exposed = _claimed_exposed(experiment_id, phase)
    sum_metrics = [m for m in kept.values() if m.kind in SUM_KINDS]
    per_user = _per_user_sums(connection, exposed, sum_metrics, lookback) if sum_metrics else None
    quantiles: dict[str, Select[Any]] = {}
    for key, metric in kept.items():
        if metric.kind not in SUM_KINDS:
            found = (
                _time_to_value_values(connection, exposed, metric)
                if metric.kind == "time_to_value"
                else _event_values(connection, exposed, metric)
            )
            quantiles[key] = select(found.c.user_id, found.c.variant, found.c.value)
    return per_user, quantiles


def _recompute(
    connection: Connection, experiment_id: int, phase: int, kept: dict[str, MetricQuery], lookback: float
) -> None:
    values = ExperimentUnitValueRow
    claimed_ids = select(CLAIMED_USERS.c.user_id)
    with index_probe_joins(connection):
        before = claimed_totals(connection, experiment_id, phase, CLAIMED_USERS)
        connection.execute(
            delete(values).where(
                values.experiment_id == experiment_id, values.phase == phase, values.user_id.in_(claimed_ids)
            )
        )
    per_user_select, quantiles = recompute_sources(connection, experiment_id, phase, kept, lookback)
    if per_user_select is not None:
        # One pass over the events into a temporary table, then one cheap insert per metric from it.
        with materialized(connection, per_user_select.subquery("per_user_sums")) as per_user:
            sum_keys = [k for k, m in kept.items() if m.kind in SUM_KINDS]
            for i, key in enumerate(sum_keys):
                value = per_user.c[f"v{i}"]
                denominator = per_user.c[f"d{i}"] if f"d{i}" in per_user.c else literal(0.0)
                covariate = per_user.c[f"c{i}"] if f"c{i}" in per_user.c else literal(0.0)
                rows = select(
                    literal(experiment_id), literal(phase), per_user.c.user_id, literal(key), per_user.c.variant,
                    value, denominator, covariate,
                ).where(or_(value != 0, denominator != 0, covariate != 0))  # fmt: skip
                connection.execute(insert(values).from_select(_VALUE_COLUMNS, rows))
    for key, found in quantiles.items():
        source = found.subquery("found")
        rows = select(
            literal(experiment_id), literal(phase), source.c.user_id, literal(key), source.c.variant,
            source.c.value, literal(0.0), literal(0.0),
        )  # fmt: skip
        connection.execute(insert(values).from_select(_VALUE_COLUMNS, rows))
    with index_probe_joins(connection):
        after = claimed_totals(connection, experiment_id, phase, CLAIMED_USERS)
    add_difference(connection, experiment_id, phase, before, after)


_VALUE_COLUMNS = [
    "experiment_id",
    "phase",
    "user_id",
    "metric_key",
    "variant",
    "value",
    "denominator",
    "covariate",
]


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
    json_properties: JsonProperties, event: str, prop: str | None, kind: str, in_window: ColumnElement[bool]
) -> ColumnElement[Any]:
    weight = _name_weight(event)
    if kind == "conversion":
        return func.max(case((and_(in_window, weight != 0), 1), else_=0))
    if prop is None:
        total = func.sum(case((in_window, weight), else_=0))
        return case((total < 0, 0), else_=total) if event in DERIVED_EVENTS else total
    return func.coalesce(
        func.sum(case((and_(in_window, EventRow.name == event), json_properties.number(prop)))), 0.0
    )


def _per_user_sums(
    connection: Connection, exposed: Subquery, metrics: Sequence[MetricQuery], lookback_seconds: float
) -> Select[Any]:
    """(user_id, variant, v_i, d_i, c_i) per exposed user: one pass over their events for every sum metric."""
    dialect = connection.dialect
    json_properties = JsonProperties(dialect)
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
        value = _per_user_value(json_properties, metric.event, metric.property, metric.kind, in_window)
        columns.append(cast(func.coalesce(value, 0), Float).label(f"v{i}"))
        if metric.kind == "ratio":
            assert metric.denominator_event is not None
            denominator = _per_user_value(
                json_properties, metric.denominator_event, metric.denominator_property, "mean", in_window
            )
            columns.append(cast(func.coalesce(denominator, 0), Float).label(f"d{i}"))
        if metric.covariate and needs_covariate:
            before = _per_user_value(json_properties, metric.event, metric.property, metric.kind, ~after)
            columns.append(cast(func.coalesce(before, 0), Float).label(f"c{i}"))
    return (
        select(exposed.c.user_id, exposed.c.variant, *columns)
        .select_from(exposed.outerjoin(EventRow, join))
        .group_by(exposed.c.user_id, exposed.c.variant, exposed.c.assigned_at)
    )


def _event_values(connection: Connection, exposed: Subquery, metric: MetricQuery) -> Subquery:
    """One row per exposed user with a value: the user's mean of the numeric property in the window.

    One value per user, not per event: the order-statistics interval assumes independent values, and a user's
    events are not independent of each other (a heavy user would otherwise narrow the interval falsely).
    """
    assert metric.event is not None and metric.property is not None
    dialect = connection.dialect
    value = JsonProperties(dialect).number(metric.property)
    return (
        select(exposed.c.user_id, exposed.c.variant, func.avg(value).label("value"))
        .select_from(scan_left_first(exposed, EventRow, EventRow.user_id == exposed.c.user_id))
        .where(
            EventRow.name == metric.event,
            EventRow.timestamp >= exposed.c.assigned_at,
            EventRow.timestamp < add_seconds(exposed.c.assigned_at, metric.window_seconds, dialect),
            value.is_not(None),
        )
        .group_by(exposed.c.user_id, exposed.c.variant)
        .subquery("metric_values")
    )


def _time_to_value_values(connection: Connection, exposed: Subquery, metric: MetricQuery) -> Subquery:
    """Seconds from signup to first report, for exposed users whose first report came within the window.

    One pass: the user's variant and exposure ride along in the GROUP BY, so nothing joins back to the
    assignments (a second join made PostgreSQL pick a quadratic nested loop before the tables were analysed).
    """
    dialect = connection.dialect
    end = add_seconds(exposed.c.assigned_at, metric.window_seconds, dialect)
    firsts = (
        select(
            exposed.c.user_id,
            exposed.c.variant,
            exposed.c.assigned_at,
            func.min(case((EventRow.name == SIGNUP_EVENT, EventRow.timestamp))).label("signed_up"),
            func.min(case((EventRow.name == FIRST_VALUE_EVENT, EventRow.timestamp))).label("first_value"),
        )
        .select_from(scan_left_first(exposed, EventRow, EventRow.user_id == exposed.c.user_id))
        .where(
            EventRow.name.in_((SIGNUP_EVENT, FIRST_VALUE_EVENT)),
            # Events after the window cannot decide (a qualifying first report lies inside it, its signup before
            # it), and the bound lets the (user_id, timestamp) index serve the join as a range: without it
            # PostgreSQL, before statistics exist, ANDed the name index into every per-user probe (quadratic).
            EventRow.timestamp < end,
        )
        .group_by(exposed.c.user_id, exposed.c.variant, exposed.c.assigned_at)
        .subquery("firsts")
    )
    return (
        select(
            firsts.c.user_id,
            firsts.c.variant,
            seconds_between(firsts.c.first_value, firsts.c.signed_up, dialect).label("value"),
        )
        .where(
            firsts.c.signed_up.is_not(None),
            firsts.c.first_value >= firsts.c.assigned_at,
            firsts.c.first_value < add_seconds(firsts.c.assigned_at, metric.window_seconds, dialect),
            firsts.c.first_value >= firsts.c.signed_up,
        )
        .subquery("metric_values")
    )
