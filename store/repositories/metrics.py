"""SQL for the tracking plan's metrics. Each metric is a subquery of units (persona, value, at) — one row per
user, report or campaign, never per raw event loaded into Python — aggregated per persona in the database.

Explicit observations (metric_observations) and event-derived values are combined without double counting:
an explicit value replaces the event-derived one for the same unit (user for time to value, report_id for
report accuracy, campaign_id for renewals).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Select,
    String,
    Subquery,
    TableClause,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Dialect

from store.models import UNASSIGNED_PERSONA, CampaignRow, MetricObservationRow, ReportRow, UserRow
from store.sql import (
    add_days,
    create_temporary_table,
    drop_temporary_table,
    less_than_days_after,
    nearest_rank,
    seconds_between,
    utc_day,
)

UNASSIGNED = UNASSIGNED_PERSONA
CORRECTION_WINDOW_DAYS = 7


@dataclass(frozen=True, slots=True)
class UnitAggregate:
    """Per persona (None = everyone): units, Σvalue, Σvalue², nearest-rank p50 and p90."""

    persona: str | None
    n: int
    total: float
    total_squares: float
    p50: float | None
    p90: float | None


@dataclass(frozen=True, slots=True)
class DailyAggregate:
    persona: str | None
    day: str  # YYYY-MM-DD (UTC)
    n: int
    total: float


def _persona() -> ColumnElement[str]:
    return func.coalesce(UserRow.persona, literal(UNASSIGNED))


def _in(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def time_to_value_units(dialect: Dialect, start: datetime, end: datetime) -> Subquery:
    """Seconds from user_signed_up to the user's first report_generated, for first reports in [start, end).

    An explicit TIME_TO_VALUE observation in the window replaces the event-derived value of that user.
    """
    return time_to_value_window_units(dialect, (start, end))


def time_to_value_window_units(dialect: Dialect, bounds: Sequence[datetime]) -> Subquery:
    """time_to_value_units of consecutive windows [bounds[0], bounds[1]), [bounds[1], bounds[2]), … in one
    statement, each window's units as if computed on their own; `window_index` says whose they are.

    A user's value comes from the users row: ingestion keeps each user's earliest user_signed_up and earliest
    report_generated there (signed_up_at, first_report_at), so the units are one range of the first_report_at
    index — no report or signup events are read. A first report before the signup gives no value.
    """
    first, last = bounds[0], bounds[-1]
    reported_at, signed_up_at = UserRow.first_report_at, UserRow.signed_up_at
    inner_bounds = bounds[1:-1]
    window_index = (
        case(*((reported_at < bound, index) for index, bound in enumerate(inner_bounds)), else_=len(inner_bounds))
        if inner_bounds else literal(0)
    )  # fmt: skip
    derived = (
        select(
            window_index.label("window_index"),
            UserRow.id.label("user_id"),
            _persona().label("persona"),
            seconds_between(reported_at, signed_up_at, dialect).label("value"),
            reported_at.label("at"),
        )
        .where(_in(reported_at, first, last), signed_up_at.is_not(None), reported_at >= signed_up_at)
        .cte()
    )
    parts: list[Select[Any]] = []
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        explicit_users = select(MetricObservationRow.user_id).where(
            MetricObservationRow.category == "time_to_value",
            _in(MetricObservationRow.observed_at, start, end),
            MetricObservationRow.user_id.is_not(None),
        )
        parts.append(
            select(derived.c.window_index, derived.c.persona, derived.c.value, derived.c.at).where(
                derived.c.window_index == index, derived.c.user_id.not_in(explicit_users)
            )
        )
        explicit = _explicit_units(
            "time_to_value", start, end, unit_key=MetricObservationRow.user_id
        ).subquery()
        parts.append(select(literal(index).label("window_index"), *explicit.c))
    return union_all(*parts).subquery("units")


def window_units(units: FromClause, index: int) -> Subquery:
    """The units of one window (by its `window_index`) of a table of several windows' units."""
    columns = [units.c.persona, units.c.value, units.c.at]
    if "weight" in units.c:
        columns.append(units.c.weight)
    return select(*columns).where(units.c.window_index == index).subquery()


def indexed_units(windows: Sequence[Subquery]) -> Subquery:
    """Units of several windows, each window's computed on its own, with the window's index in `window_index`."""
    return union_all(
        *(select(literal(index).label("window_index"), *units.c) for index, units in enumerate(windows))
    ).subquery("units")


def _weight(units: FromClause) -> ColumnElement[Any]:
    """How many identical units a row stands for: a `weight` column where the units are pre-grouped, else 1."""
    return units.c.weight if "weight" in units.c else literal(1)


def _explicit_units(
    category: str, start: datetime, end: datetime, unit_key: Any = None
) -> Select[tuple[str, float, datetime]]:
    """Explicit observations of the window; with `unit_key`, only the latest per unit (a retried call or a
    corrected value replaces the earlier one rather than counting twice)."""
    observations = MetricObservationRow
    in_window = and_(observations.category == category, _in(observations.observed_at, start, end))
    if unit_key is None:
        return select(
            observations.persona.label("persona"),
            cast(observations.value, Float).label("value"),
            observations.observed_at.label("at"),
        ).where(in_window)
    # An observation without a unit key is its own unit (keyed by its id), never merged with other keyless ones.
    unit = func.coalesce(unit_key, cast(observations.id, String))
    latest_first = func.row_number().over(
        partition_by=unit, order_by=(observations.observed_at.desc(), observations.id.desc())
    )
    ranked = (
        select(
            observations.persona.label("persona"),
            cast(observations.value, Float).label("value"),
            observations.observed_at.label("at"),
            latest_first.label("recency"),
        )
        .where(in_window)
        .subquery()
    )
    return select(ranked.c.persona, ranked.c.value, ranked.c.at).where(ranked.c.recency == 1)


def report_accuracy_units(dialect: Dialect, start: datetime, end: datetime) -> Subquery:
    """Report outcomes decided in [start, end): 0 at a report's first report_corrected within 7 days of its
    first report_sent; 1 when 7 days pass without one, decided at sent + 7 days.

    Deciding each outcome when it becomes known (as renewals do) keeps the latest window unbiased: counting
    reports sent in the window would call recent reports accurate before they have had time to be corrected.
    Reads the reports table, where ingestion keeps each report's first send and correction and the outcome they
    decide (store.repositories.reports): one range of its decided_at index. An explicit REPORT_ACCURACY
    observation (dims.report_id) replaces the event-derived outcome of that report.
    """
    report = ReportRow
    explicit_reports = select(MetricObservationRow.dims["report_id"].as_string()).where(
        MetricObservationRow.category == "report_accuracy",
        MetricObservationRow.dims["report_id"].as_string().is_not(None),
    )
    # Outcomes are 0 or 1: grouped per persona, outcome and UTC day (the daily series' resolution) into weighted
    # units, a few hundred rows instead of one per report for everything downstream.
    # The sender's persona is kept on the report (ingestion updates it when the persona changes).
    persona = func.coalesce(report.persona, literal(UNASSIGNED))
    day = utc_day(report.decided_at, dialect)
    derived = (
        select(
            persona.label("persona"),
            cast(report.accurate, Float).label("value"),
            func.min(report.decided_at).label("at"),
            func.count().label("weight"),
        )
        .where(_in(report.decided_at, start, end), report.report_id.not_in(explicit_reports))
        .group_by(persona, report.accurate, day)
    )
    explicit = _explicit_units(
        "report_accuracy", start, end, unit_key=MetricObservationRow.dims["report_id"].as_string()
    ).subquery()
    return union_all(derived, select(*explicit.c, literal(1).label("weight"))).subquery("units")


def renewal_units(dialect: Dialect, start: datetime, end: datetime, renewal_window_days: int) -> Subquery:
    """Renewal outcomes decided in [start, end): 1 at a campaign's first sponsor_renewed; 0 when its first
    campaign_ended has no sponsor_renewed within `renewal_window_days`, decided at the end of that wait.

    Deciding outcomes when they become known keeps recent windows unbiased (TRACKING_PLAN.md). Reads the campaigns
    table (first end and first renewal per campaign, with their senders, kept by ingestion): one index range for
    the renewals of the window and one for the ends whose wait ran out in it. An explicit RENEWAL_SUCCESS
    observation (dims.campaign_id) replaces the event-derived outcome of that campaign.
    """
    campaign = CampaignRow
    explicit_campaigns = select(MetricObservationRow.dims["campaign_id"].as_string()).where(
        MetricObservationRow.category == "renewal_success",
        MetricObservationRow.dims["campaign_id"].as_string().is_not(None),
    )
    not_explicit = campaign.campaign_id.not_in(explicit_campaigns)
    successes = (
        select(_persona().label("persona"), literal(1.0).label("value"), campaign.renewed_at.label("at"))
        .select_from(campaign)
        .outerjoin(UserRow, UserRow.id == campaign.renewed_user_id)
        .where(_in(campaign.renewed_at, start, end), not_explicit)
    )
    wait = timedelta(days=renewal_window_days)
    unrenewed = or_(
        campaign.renewed_at.is_(None),
        not_(less_than_days_after(campaign.renewed_at, campaign.ended_at, renewal_window_days, dialect)),
    )
    failures = (
        # A failure is decided when the wait runs out, so that is where the daily series puts it.
        select(
            _persona().label("persona"),
            literal(0.0).label("value"),
            add_days(campaign.ended_at, renewal_window_days, dialect).label("at"),
        )
        .select_from(campaign)
        .outerjoin(UserRow, UserRow.id == campaign.ended_user_id)
        .where(_in(campaign.ended_at, start - wait, end - wait), unrenewed, not_explicit)
    )
    explicit = _explicit_units(
        "renewal_success", start, end, unit_key=MetricObservationRow.dims["campaign_id"].as_string()
    )
    return union_all(successes, failures, explicit).subquery("units")


def custom_units(name: str, start: datetime, end: datetime) -> Subquery:
    """A custom metric: explicit observations only."""
    return _explicit_units(name, start, end).subquery("units")


@contextmanager
def materialized(connection: Connection, units: Subquery) -> Iterator[TableClause]:
    """The units in a temporary table for the duration of the block (dropped after)."""
    temporary = create_temporary_table(connection, select(units), "fl_units")
    yield temporary
    # Not in a `finally`: after a failed statement PostgreSQL refuses every command until rollback (which drops
    # the table anyway), and a DROP there would hide the real error.
    drop_temporary_table(connection, temporary)


def aggregate_units(connection: Connection, units: FromClause, *, percentiles: bool) -> list[UnitAggregate]:
    """Per persona, then overall: n, Σ, Σ² (and nearest-rank p50/p90 when asked, via window functions).

    Without percentiles the overall row is the sum of the persona rows (every unit has exactly one persona), so
    the units are scanned once.
    """
    if not percentiles:
        weight, value = _weight(units), units.c.value
        rows = connection.execute(
            select(units.c.persona, func.sum(weight), func.sum(value * weight), func.sum(value * value * weight))
            .group_by(units.c.persona)
        ).all()  # fmt: skip
        by_persona = [
            UnitAggregate(r[0], int(r[1]), float(r[2] or 0), float(r[3] or 0), None, None) for r in rows
        ]
        overall = UnitAggregate(
            None,
            sum(a.n for a in by_persona),
            sum(a.total for a in by_persona),
            sum(a.total_squares for a in by_persona),
            None,
            None,
        )
        return [*by_persona, overall]
    assert "weight" not in units.c, "percentiles need one row per unit"
    return _ranked(connection, units, by_persona=True) + _ranked(connection, units, by_persona=False)


def _ranked(connection: Connection, units: FromClause, *, by_persona: bool) -> list[UnitAggregate]:
    partition = [units.c.persona] if by_persona else []
    ranked = select(
        units.c.persona,
        units.c.value,
        func.row_number().over(partition_by=partition, order_by=units.c.value).label("rank"),
        func.count().over(partition_by=partition).label("n"),
    ).subquery()
    p50 = func.max(case((ranked.c.rank == nearest_rank(ranked.c.n, 50), ranked.c.value)))
    p90 = func.max(case((ranked.c.rank == nearest_rank(ranked.c.n, 90), ranked.c.value)))
    columns = [func.count(), func.sum(ranked.c.value), func.sum(ranked.c.value * ranked.c.value), p50, p90]
    if by_persona:
        rows = connection.execute(select(ranked.c.persona, *columns).group_by(ranked.c.persona)).all()
        return [UnitAggregate(r[0], int(r[1]), float(r[2] or 0), float(r[3] or 0), r[4], r[5]) for r in rows]
    row = connection.execute(select(*columns)).one()
    return [UnitAggregate(None, int(row[0]), float(row[1] or 0), float(row[2] or 0), row[3], row[4])]


def with_overall(rows: list[DailyAggregate]) -> list[DailyAggregate]:
    """Add the everyone-rows by summing personas per day (each unit belongs to exactly one persona)."""
    totals: dict[str, tuple[int, float]] = {}
    for row in rows:
        n, total = totals.get(row.day, (0, 0.0))
        totals[row.day] = (n + row.n, total + row.total)
    return rows + [DailyAggregate(None, day, n, total) for day, (n, total) in sorted(totals.items())]


def daily_units(connection: Connection, units: FromClause) -> list[DailyAggregate]:
    """Per persona, then overall, per UTC day of the unit's `at`: n and Σvalue."""
    day = utc_day(units.c.at, connection.dialect).label("day")
    weight = _weight(units)
    by_persona = connection.execute(
        select(units.c.persona, day, func.sum(weight), func.sum(units.c.value * weight)).group_by(
            units.c.persona, day
        )
    ).all()
    return with_overall([DailyAggregate(r[0], r[1], int(r[2]), float(r[3] or 0)) for r in by_persona])


def known_personas(connection: Connection) -> list[str]:
    return list(connection.execute(select(UserRow.persona).distinct().order_by(UserRow.persona)).scalars())
