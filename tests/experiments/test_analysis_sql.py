"""The SQL sufficient statistics equal a plain-Python computation over the same rows, on SQLite and PostgreSQL;
PostgreSQL's plans for them stay linear in users and events."""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import Connection, event, text

from store.database import Database
from store.repositories.experiment_stats import GroupQuantile, GroupSums, MetricQuery, experiment_statistics
from store.repositories.experiment_sums import claimed_totals_select
from store.repositories.experiment_units import (
    CLAIMED_USERS,
    claim_dirty_users,
    kept_metrics,
    mark_dirty,
    recompute_sources,
)
from tests.experiments.support import (
    Clock,
    assign_in_waves,
    definition,
    experiment_id,
    exposed_users,
    plant_conversions,
    stored_rows,
    track,
)
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.experiments.analysis import analyze
from tools.experiments.service import ExperimentService
from tools.stats.statistics import quantile_rank_bounds

HOUR, DAY = 3600.0, 86_400.0
LOOKBACK_SECONDS = 14 * DAY
QUERIES = [
    MetricQuery("conversion", 72 * HOUR, event="onboarding_completed", covariate=True),
    MetricQuery("mean", 48 * HOUR, event="error_occurred", covariate=True),
    MetricQuery("mean", 72 * HOUR, event="payment_succeeded", property="amount", covariate=True),
    MetricQuery("ratio", 72 * HOUR, event="task_completed", denominator_event="task_attempted"),
    MetricQuery(
        "ratio", 24 * HOUR, event="payment_succeeded", property="amount", denominator_event="report_sent"
    ),
    MetricQuery("mean", 72 * HOUR, event="report_sent_uncorrected"),
    MetricQuery("conversion", 72 * HOUR, event="report_sent_uncorrected"),
    MetricQuery("quantile", 72 * HOUR, event="page_loaded", property="ms", quantile=0.9),
    MetricQuery("quantile", 72 * HOUR, event="page_loaded", property="ms", quantile=0.55),
    MetricQuery("time_to_value", 72 * HOUR, quantile=0.5),
]
EVENT_NAMES = ["onboarding_completed", "error_occurred", "payment_succeeded", "task_completed", "task_failed",
               "report_sent", "report_corrected", "page_loaded", "user_signed_up", "report_generated"]  # fmt: skip
DERIVED = {"task_attempted": {"task_completed": 1, "task_failed": 1},
           "report_sent_uncorrected": {"report_sent": 1, "report_corrected": -1}}  # fmt: skip


# ---- a dataset with every edge: boundaries, stray types, users without events ---------------------------------


def _events_for(user: str, exposed_at: datetime, rng: random.Random) -> list[CanonicalEvent]:
    def at(seconds: float) -> datetime:
        return exposed_at + timedelta(seconds=seconds)

    events = []
    for name in EVENT_NAMES:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
            seconds = rng.randint(int(-20 * DAY), int(5 * DAY))
            properties: dict[str, Any] = {}
            if name == "payment_succeeded":
                properties["amount"] = rng.choice(
                    [rng.randint(1, 99), round(rng.uniform(0, 50), 2), "n/a", None]
                )
            if name == "page_loaded":
                properties["ms"] = rng.choice([rng.randint(50, 3000), rng.uniform(10, 900), "slow"])
            events.append(track(user, name, at(seconds), **properties))
    # Boundaries: on exposure (counts), on the window's end (does not), just before exposure (covariate only),
    # on the lookback's start (covariate) and just before it (nothing).
    edges = [0, 72 * HOUR, 48 * HOUR, 24 * HOUR, -1, -LOOKBACK_SECONDS, -LOOKBACK_SECONDS - 1]
    for seconds in rng.sample(edges, 3):
        name = rng.choice(["onboarding_completed", "error_occurred", "payment_succeeded", "report_sent"])
        events.append(track(user, name, at(seconds), amount=7))
    return events


def _dataset(service: ExperimentService, clock: Clock, database: Database) -> dict[str, list[CanonicalEvent]]:
    three_arms = [{"name": n, "weight": w} for n, w in (("control", 0.4), ("b", 0.3), ("c", 0.3))]
    service.create(definition("stats", variants=three_arms))
    service.start("stats")
    rng = random.Random(5)
    users = [f"user-{i}" for i in range(150)]
    for user in users:  # one exposure every 7 minutes and some seconds: every user has its own window
        service.assign("stats", user)
        clock.advance(seconds=7 * 60 + rng.randint(0, 59))
    by_user: dict[str, list[CanonicalEvent]] = {}
    for user, (_, exposed_at) in exposed_users(database, "stats").items():
        if user.endswith("7"):
            by_user[user] = []  # users without events count as zeros
            continue
        by_user[user] = _events_for(user, exposed_at, rng)
    by_user["user-1"].append(track("user-1", "report_generated", exposed_at_of(database, "user-1")))
    EventIngestor(database).ingest([e for events in by_user.values() for e in events])
    return by_user


def exposed_at_of(database: Database, user: str) -> datetime:
    return exposed_users(database, "stats")[user][1]


# ---- the same statistics in plain Python ----------------------------------------------------------------------


def _numeric(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _per_user(query: MetricQuery, events: list[CanonicalEvent], exposed_at: datetime, *, pre: bool = False,
              event_name: str | None = None, prop: str | None = None) -> float:  # fmt: skip
    name = event_name or query.event
    assert name is not None
    end = exposed_at + timedelta(seconds=query.window_seconds)
    start = exposed_at - timedelta(seconds=LOOKBACK_SECONDS)
    chosen = [
        e for e in events if (start <= e.timestamp < exposed_at if pre else exposed_at <= e.timestamp < end)
    ]
    weights = DERIVED.get(name, {name: 1})
    if query.kind == "conversion":
        return float(any(e.name in weights for e in chosen))
    if prop is None:
        total = sum(weights.get(e.name, 0) for e in chosen)
        return float(max(total, 0))
    return sum(v for e in chosen if e.name == name and (v := _numeric(e.properties.get(prop))) is not None)


def _sums(rows: list[tuple[float, ...]]) -> dict[str, float]:
    def total(f: Callable[[tuple[float, ...]], float]) -> float:
        return math.fsum(f(r) for r in rows)

    return {"sum": total(lambda r: r[0]), "sum_squares": total(lambda r: r[0] ** 2),
            "denominator_sum": total(lambda r: r[1]), "denominator_sum_squares": total(lambda r: r[1] ** 2),
            "main_denominator_sum_product": total(lambda r: r[0] * r[1]),
            "covariate_sum": total(lambda r: r[2]), "covariate_sum_squares": total(lambda r: r[2] ** 2),
            "main_covariate_sum_product": total(lambda r: r[0] * r[2])}  # fmt: skip


def _expected_sums(query: MetricQuery, groups: Mapping[int, list[tuple[list[CanonicalEvent], datetime]]]
                   ) -> dict[int, dict[str, float]]:  # fmt: skip
    expected = {}
    for group, members in groups.items():
        rows = []
        for events, exposed_at in members:
            value = _per_user(query, events, exposed_at, prop=query.property)
            denominator = 0.0
            if query.kind == "ratio":
                denominator = _per_user(
                    query, events, exposed_at, event_name=query.denominator_event, prop=None
                )
            covariate = (
                _per_user(query, events, exposed_at, pre=True, prop=query.property)
                if query.covariate
                else 0.0
            )
            rows.append((value, denominator, covariate))
        expected[group] = {"n": len(rows), **_sums(rows)}
    return expected


def _values(query: MetricQuery, events: list[CanonicalEvent], exposed_at: datetime) -> list[float]:
    end = exposed_at + timedelta(seconds=query.window_seconds)
    if query.kind == "time_to_value":
        signups = [e.timestamp for e in events if e.name == "user_signed_up"]
        reports = [e.timestamp for e in events if e.name == "report_generated"]
        if not signups or not reports:
            return []
        first = min(reports)
        if not (exposed_at <= first < end and first >= min(signups)):
            return []
        return [(first - min(signups)).total_seconds()]
    assert query.property is not None
    return [v for e in events if e.name == query.event and exposed_at <= e.timestamp < end
            and (v := _numeric(e.properties.get(query.property))) is not None]  # fmt: skip


def _expected_quantiles(query: MetricQuery, groups: Mapping[int, list[tuple[list[CanonicalEvent], datetime]]]
                        ) -> dict[int, GroupQuantile]:  # fmt: skip
    expected = {}
    q = query.quantile or 0.5
    for group, members in groups.items():
        per_user = [_values(query, events, exposed_at) for events, exposed_at in members]
        values = sorted(sum(found) / len(found) for found in per_user if found)  # one value (mean) per user
        if not values:  # exposed users, none with a value: reported, with n = 0
            expected[group] = GroupQuantile(0, None, None, None)
            continue
        n = len(values)
        rank = min(n, max(1, math.ceil(Fraction(n) * Fraction(str(q)))))  # nearest rank, in exact arithmetic
        lower, upper = quantile_rank_bounds(n, q)
        expected[group] = GroupQuantile(n, values[rank - 1], values[lower - 1], values[upper - 1])
    return expected


def test_sufficient_statistics_equal_a_python_computation(database: Database) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    by_user = _dataset(service, clock, database)
    groups: dict[int, list[tuple[list[CanonicalEvent], datetime]]] = defaultdict(list)
    for user, (variant, exposed_at) in exposed_users(database, "stats").items():
        groups[variant].append((by_user[user], exposed_at))
    assert sorted(groups) == [0, 1, 2] and min(len(m) for m in groups.values()) > 30
    with database.read() as connection:
        got = experiment_statistics(connection, experiment_id(database, "stats"), 0, QUERIES,
                                    rank_bounds=quantile_rank_bounds, lookback_seconds=LOOKBACK_SECONDS)  # fmt: skip
    for query, statistics in zip(QUERIES, got, strict=True):
        if query.kind in ("quantile", "time_to_value"):
            expected = _expected_quantiles(query, groups)
            assert statistics.keys() == expected.keys(), query
            for group, found in statistics.items():  # means of floats: equal up to summation order
                want = expected[group]
                assert isinstance(found, GroupQuantile) and found.n == want.n, query
                got = (found.estimate, found.lower, found.upper)
                if want.n == 0:
                    assert got == (None, None, None), query
                    continue
                assert got == pytest.approx((want.estimate, want.lower, want.upper), rel=1e-12), query
            continue
        expected = _expected_sums(query, groups)
        for group, sums in statistics.items():
            assert isinstance(sums, GroupSums)
            actual = asdict(sums)
            for name, value in expected[group].items():
                if value and name not in actual:
                    pytest.fail(f"{query}: {name} missing")
                assert math.isclose(actual.get(name, 0.0), value, rel_tol=1e-9, abs_tol=1e-9), (
                    query,
                    group,
                    name,
                )
        assert set(statistics) == {0, 1, 2}


def test_events_before_exposure_or_after_the_window_do_not_count(database: Database) -> None:
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("edges", min_units_per_variant=2, cuped=False))
    service.start("edges")
    users = [f"e{i}" for i in range(40)]
    assigned = {a.user_id: a for a in service.assign_many("edges", users)}
    exposed_at = clock.now
    window_end = exposed_at + timedelta(hours=72)
    events = []
    for i, user in enumerate(users):
        moment = [
            exposed_at - timedelta(seconds=1),
            window_end,
            exposed_at,
            window_end - timedelta(seconds=1),
        ][i % 4]
        events.append(track(user, "onboarding_completed", moment))
    EventIngestor(database).ingest(events)
    results = analyze(service, "edges", now=window_end)
    [metric] = results.metrics
    counted = {name: 0 for name in ("control", "treatment")}
    exposed = {name: 0 for name in ("control", "treatment")}
    for i, user in enumerate(users):
        variant = assigned[user].variant or ""
        exposed[variant] += 1
        counted[variant] += i % 4 in (2, 3)
    means = {metric.result.control.name: metric.result.control.mean,
             **{v.name: v.mean for v in metric.result.variants}}  # fmt: skip
    assert means == {v: counted[v] / exposed[v] for v in exposed}


@pytest.mark.parametrize(("count", "quantile", "rank"), [(100, 0.07, 7), (100, 0.55, 55), (25, 0.28, 7)])
def test_nearest_rank_is_exact(database: Database, count: int, quantile: float, rank: int) -> None:
    """ceil(n·q) in floating point overshoots when n·q is a whole number (100 × 0.07 = 7.000000000000001)."""
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(
        definition("ranks", variants=[{"name": "all", "weight": 1.0}, {"name": "none", "weight": 0.0}])
    )
    service.start("ranks")
    users = [f"user-{i}" for i in range(1, count + 1)]  # one value per user: the metric is per user
    assignments = service.assign_many("ranks", users)
    assert {a.variant_index for a in assignments} == {0}
    EventIngestor(database).ingest(
        [
            track(user, "page_loaded", clock.now + timedelta(seconds=1), ms=i)
            for i, user in enumerate(users, 1)
        ]
    )
    query = MetricQuery("quantile", 72 * HOUR, event="page_loaded", property="ms", quantile=quantile)
    with database.read() as connection:
        [statistics] = experiment_statistics(connection, experiment_id(database, "ranks"), 0, [query],
                                             rank_bounds=quantile_rank_bounds)  # fmt: skip
    group = statistics[0]
    assert isinstance(group, GroupQuantile) and (group.n, group.estimate) == (count, float(rank))


# ---- PostgreSQL plans -----------------------------------------------------------------------------------------


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _rows_touched(node: dict[str, Any]) -> float:
    loops = node.get("Actual Loops", 1)
    per_loop = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    return (per_loop + node.get("Rows Removed by Join Filter", 0)) * loops


def _statements_of_an_analysis(
    database: Database, service: ExperimentService, key: str
) -> list[tuple[str, Any]]:
    """The SELECTs over the kept per-user values that one analysis sends, with their parameters (but those of the
    claimed users, which read the connection's temporary table: _refresh_plans explains them)."""
    statements: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if (
            statement.lstrip().upper().startswith(("SELECT", "WITH"))
            and "experiment_unit_values" in statement
            and CLAIMED_USERS.name not in statement
        ):
            statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        assert analyze(service, key).winner == "treatment"
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    return statements


class _RollBack(Exception):
    """Leaves the refresh's claim undone: the test only looks at plans."""


@contextmanager
def _claimed_refresh(
    database: Database, experiment: int, users: list[str]
) -> Iterator[tuple[Connection, list[Any]]]:
    """Claim `users` as a refresh would and yield the statements it would run — the per-user sums, each quantile's
    values, the claimed users' totals — on the claiming connection; the claim is rolled back afterwards."""
    with contextlib.suppress(_RollBack), database.write() as connection:
        kept = kept_metrics(connection, experiment, 0, [], 0.0)
        mark_dirty(connection, experiment, users)
        assert claim_dirty_users(connection, experiment, 10**9) == len(users)
        per_user, quantiles = recompute_sources(connection, experiment, 0, kept, 14 * 86_400.0)
        yield connection, [per_user, *quantiles.values(), claimed_totals_select(experiment, 0, CLAIMED_USERS)]
        raise _RollBack


def _refresh_plans(database: Database, key: str) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE of what a refresh reads from the events when every exposed user is recomputed, and of the
    totals of the claimed users' kept values (before and after, for the per-variant sums)."""
    plans: list[dict[str, Any]] = []
    with _claimed_refresh(database, experiment_id(database, key), list(stored_rows(database, key))) as (
        connection,
        statements,
    ):
        assert statements[0] is not None and len(statements) == 4  # per user; time_to_value, load_p90; totals
        for select_statement in statements:
            compiled = select_statement.compile(connection, compile_kwargs={"literal_binds": True})
            [(plan,)] = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}")
            plans.append((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    return plans


def _row_count(database: Database) -> int:
    with database.read() as connection:
        return sum(
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("events", "users", "experiment_assignments")
        )


def test_postgresql_plans_stay_linear(database: Database) -> None:
    """Every statement of an analysis touches O(users + events) rows, checked with EXPLAIN ANALYZE.

    Checked twice: on freshly loaded tables (no statistics yet, as right after a bulk import before autovacuum
    runs; the planner then guesses row counts, which once produced a quadratic nested loop) and after ANALYZE
    (the steady state). ANALYZE here is the second scenario itself, not a crutch for the first.
    """
    if database.dialect != "postgresql":
        pytest.skip("query plans are a PostgreSQL concern")
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    quantile = {
        "name": "load_p90",
        "kind": "quantile",
        "event": "page_loaded",
        "property": "ms",
        "quantile": 0.9,
    }
    secondary = ["time_to_value", "revenue", "task_completion_rate", quantile]
    service.create(definition("plans", secondary_metrics=secondary))
    service.start("plans")
    assign_in_waves(service, clock, "plans", [f"p{i}" for i in range(3000)])
    plant_conversions(database, "plans", [0.3, 0.4], seed=1)
    rng = random.Random(2)
    noise = []
    for user, (_, exposed_at) in exposed_users(database, "plans").items():
        noise.append(track(user, "user_signed_up", exposed_at - timedelta(minutes=5)))
        noise.append(track(user, "report_generated", exposed_at + timedelta(seconds=rng.randint(1, 9999))))
        noise.append(track(user, "page_loaded", exposed_at + timedelta(seconds=60), ms=rng.randint(50, 900)))
        noise.append(track(user, "task_completed", exposed_at + timedelta(seconds=90)))
    EventIngestor(database).ingest(noise)
    budget = 40 * _row_count(database)

    for scenario in ("no statistics", "after ANALYZE"):
        if scenario == "after ANALYZE":
            with database.write() as connection:
                connection.execute(text("ANALYZE"))
        statements = _statements_of_an_analysis(database, service, "plans")
        assert len(statements) >= 4
        plans = _refresh_plans(database, "plans")
        for statement, parameters in statements:
            with database.read() as connection:
                [(plan,)] = connection.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
                )
            plans.append((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
        for plan in plans:
            nodes = list(_plan_nodes(plan))
            rescanned = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Actual Loops", 1) > 1]
            assert not rescanned, (scenario, plan)
            touched = sum(_rows_touched(n) for n in nodes)
            assert touched < budget, (scenario, touched, budget, plan)


def test_sqlite_refresh_reads_only_the_claimed_users(database: Database) -> None:
    """Every table a refresh chunk reads is probed per claimed user (SQLite has no statistics: left to itself it
    scanned every assignment or kept value of the experiment and probed the claimed users' table for each)."""
    if database.dialect != "sqlite":
        pytest.skip("the join order SQLite picks without statistics")
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    quantile = {
        "name": "load_p90",
        "kind": "quantile",
        "event": "page_loaded",
        "property": "ms",
        "quantile": 0.9,
    }
    service.create(definition("order", secondary_metrics=["time_to_value", "revenue", quantile]))
    service.start("order")
    users = [f"o{i}" for i in range(200)]
    assign_in_waves(service, clock, "order", users)
    plant_conversions(database, "order", [0.3, 0.4], seed=3)
    analyze(service, "order")
    experiment = experiment_id(database, "order")
    probes: list[str] = []
    with _claimed_refresh(database, experiment, users[:20]) as (connection, statements):
        for statement in statements:
            assert statement is not None
            compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            probes += [row[3] for row in plan if row[3].startswith(("SCAN", "SEARCH"))]
    assert any(line.startswith(f"SCAN {CLAIMED_USERS.name}") for line in probes), probes
    for line in probes:
        if any(
            f" {table} " in f"{line} "
            for table in ("events", "experiment_assignments", "experiment_unit_values")
        ):
            assert line.startswith("SEARCH") and "user_id=?" in line, line


def _vacuums(database: Database) -> int:
    """PostgreSQL: explicit VACUUMs of experiment_unit_values so far. (Not the all-visible pages VACUUM marks:
    another test's open transaction can keep the fresh rows from being visible to all.)"""
    with database.read() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = to_regclass('experiment_unit_values')"
                )
            ).scalar_one()
        )


def test_a_bulk_refresh_leaves_the_values_vacuumed(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a refresh of many users (the first analysis after an import) PostgreSQL's per-user values are
    vacuumed, so index-only scans of them stay in the index; a small refresh does not vacuum. SQLite has
    nothing to vacuum and analyses the same."""
    import tools.experiments.analysis as analysis_module

    monkeypatch.setattr(analysis_module, "LARGE_REFRESH_USERS", 500)
    clock = Clock()
    service = ExperimentService(database, clock=clock)
    service.create(definition("vacuumed"))
    service.start("vacuumed")
    assign_in_waves(service, clock, "vacuumed", [f"v{i}" for i in range(600)])
    plant_conversions(database, "vacuumed", [0.3, 0.5], seed=3)
    first = analyze(service, "vacuumed", now=clock())
    assert sum(first.units.values()) == 600
    if database.dialect == "postgresql":
        assert _vacuums(database) == 1
    late = [
        (user, exposed_at) for user, (_, exposed_at) in sorted(exposed_users(database, "vacuumed").items())
    ]
    EventIngestor(database).ingest(
        [
            track(user, "onboarding_completed", exposed_at + timedelta(hours=1))
            for user, exposed_at in late[:10]
        ]
    )
    again = analyze(service, "vacuumed", now=clock())  # 10 users refreshed: below the bulk threshold
    assert again.units == first.units
    if database.dialect == "postgresql":
        assert _vacuums(database) == 1
