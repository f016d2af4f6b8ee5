"""SQL for the tracking plan's metrics. Each metric is a subquery of units (persona, value, at) — one row per
user, report or campaign, never per raw event loaded into Python — aggregated per persona in the database.

Explicit observations (metric_observations) and event-derived values are combined without double counting:
an explicit value replaces the event-derived one for the same unit (user for time to value, report_id for
report accuracy, campaign_id for renewals).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    CreateTableAs,
    Float,
    FromClause,
    Select,
    String,
    Subquery,
    Table,
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
from sqlalchemy.orm import aliased
from sqlalchemy.schema import DropTable

from store.models import UNASSIGNED_PERSONA, EventRow, MetricObservationRow, UserRow
from store.sql import add_days, less_than_days_after, nearest_rank, seconds_between, utc_day

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
    signup = (
        select(EventRow.user_id, func.min(EventRow.timestamp).label("signed_up_at"))
        .where(EventRow.name == "user_signed_up", EventRow.user_id.is_not(None), EventRow.timestamp < end)
        .group_by(EventRow.user_id)
        .subquery()
    )
    # First reports of the window: the window's reports of users with no earlier report (an index probe on
    # (user_id, timestamp) per user), so the cost follows the window, not the whole history.
    earlier = aliased(EventRow)
    earlier_report = (
        select(literal(1))
        .where(
            earlier.user_id == EventRow.user_id,
            earlier.name == "report_generated",
            earlier.timestamp < start,
        )
        .exists()
    )
    first_report = (
        select(EventRow.user_id, func.min(EventRow.timestamp).label("first_at"))
        .where(EventRow.name == "report_generated", _in(EventRow.timestamp, start, end), ~earlier_report)
        .group_by(EventRow.user_id)
        .subquery()
    )
    explicit_users = select(MetricObservationRow.user_id).where(
        MetricObservationRow.category == "time_to_value",
        _in(MetricObservationRow.observed_at, start, end),
        MetricObservationRow.user_id.is_not(None),
    )
    derived = (
        select(
            _persona().label("persona"),
            seconds_between(first_report.c.first_at, signup.c.signed_up_at, dialect).label("value"),
            first_report.c.first_at.label("at"),
        )
        .select_from(first_report)
        .join(signup, signup.c.user_id == first_report.c.user_id)
        .outerjoin(UserRow, UserRow.id == first_report.c.user_id)
        .where(
            first_report.c.first_at >= signup.c.signed_up_at,
            first_report.c.user_id.not_in(explicit_users),
        )
    )
    explicit = _explicit_units("time_to_value", start, end, unit_key=MetricObservationRow.user_id)
    return union_all(derived, explicit).subquery("units")


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
    report_sent; 1 when 7 days pass without one, decided at sent + 7 days.

    Deciding each outcome when it becomes known (as renewals do) keeps the latest window unbiased: counting
    reports sent in the window would call recent reports accurate before they have had time to be corrected.
    An explicit REPORT_ACCURACY observation (dims.report_id) replaces the event-derived outcome of that report.
    """
    wait = timedelta(days=CORRECTION_WINDOW_DAYS)
    report_id = EventRow.properties["report_id"].as_string()
    sent = (
        select(report_id.label("report_id"), func.min(EventRow.timestamp).label("sent_at"),
               func.min(EventRow.user_id).label("user_id"))
        .where(EventRow.name == "report_sent", _in(EventRow.timestamp, start - wait, end))
        .group_by(report_id)
        .subquery()
    )  # fmt: skip
    corrected = (
        select(report_id.label("report_id"), func.min(EventRow.timestamp).label("corrected_at"))
        .where(EventRow.name == "report_corrected", _in(EventRow.timestamp, start - wait, end))
        .group_by(report_id)
        .subquery()
    )
    in_time = and_(
        corrected.c.corrected_at >= sent.c.sent_at,
        less_than_days_after(corrected.c.corrected_at, sent.c.sent_at, CORRECTION_WINDOW_DAYS, dialect),
    )
    explicit_reports = select(MetricObservationRow.dims["report_id"].as_string()).where(
        MetricObservationRow.category == "report_accuracy",
        MetricObservationRow.dims["report_id"].as_string().is_not(None),
    )
    outcomes = (
        select(
            _persona().label("persona"),
            case((in_time, 0.0), else_=1.0).label("value"),
            case((in_time, corrected.c.corrected_at), else_=add_days(sent.c.sent_at, CORRECTION_WINDOW_DAYS, dialect))
            .label("at"),
            sent.c.sent_at.label("sent_at"),
            case((in_time, 1), else_=0).label("was_corrected"),
        )
        .select_from(sent)
        .outerjoin(corrected, corrected.c.report_id == sent.c.report_id)
        .outerjoin(UserRow, UserRow.id == sent.c.user_id)
        .where(sent.c.report_id.is_not(None), not_(sent.c.report_id.in_(explicit_reports)))
        .subquery()
    )  # fmt: skip
    decided_in_window = or_(
        and_(outcomes.c.was_corrected == 1, _in(outcomes.c.at, start, end)),
        and_(outcomes.c.was_corrected == 0, _in(outcomes.c.sent_at, start - wait, end - wait)),
    )
    derived = select(outcomes.c.persona, outcomes.c.value, outcomes.c.at).where(decided_in_window)
    explicit = _explicit_units(
        "report_accuracy", start, end, unit_key=MetricObservationRow.dims["report_id"].as_string()
    )
    return union_all(derived, explicit).subquery("units")


def renewal_units(dialect: Dialect, start: datetime, end: datetime, renewal_window_days: int) -> Subquery:
    """Renewal outcomes decided in [start, end): 1 at a sponsor_renewed event; 0 when a campaign_ended has no
    sponsor_renewed within `renewal_window_days`, decided at the end of that wait.

    Deciding outcomes when they become known keeps recent windows unbiased (TRACKING_PLAN.md). An explicit
    RENEWAL_SUCCESS observation (dims.campaign_id) replaces the event-derived outcome of that campaign.
    """
    campaign_id = EventRow.properties["campaign_id"].as_string()
    explicit_campaigns = select(MetricObservationRow.dims["campaign_id"].as_string()).where(
        MetricObservationRow.category == "renewal_success",
        MetricObservationRow.dims["campaign_id"].as_string().is_not(None),
    )
    renewed = (
        select(campaign_id.label("campaign_id"), func.min(EventRow.timestamp).label("renewed_at"),
               func.min(EventRow.user_id).label("user_id"))
        .where(EventRow.name == "sponsor_renewed", EventRow.timestamp < end + timedelta(days=renewal_window_days))
        .group_by(campaign_id)
        .subquery()
    )  # fmt: skip
    wait = timedelta(days=renewal_window_days)
    ended = (
        select(campaign_id.label("campaign_id"), func.min(EventRow.timestamp).label("ended_at"),
               func.min(EventRow.user_id).label("user_id"))
        .where(EventRow.name == "campaign_ended", _in(EventRow.timestamp, start - wait, end - wait))
        .group_by(campaign_id)
        .subquery()
    )  # fmt: skip
    successes = (
        select(_persona().label("persona"), literal(1.0).label("value"), renewed.c.renewed_at.label("at"))
        .select_from(renewed)
        .outerjoin(UserRow, UserRow.id == renewed.c.user_id)
        .where(_in(renewed.c.renewed_at, start, end), renewed.c.campaign_id.not_in(explicit_campaigns))
    )
    unrenewed = or_(
        renewed.c.renewed_at.is_(None),
        not_(less_than_days_after(renewed.c.renewed_at, ended.c.ended_at, renewal_window_days, dialect)),
    )
    failures = (
        # A failure is decided when the wait runs out, so that is where the daily series puts it.
        select(
            _persona().label("persona"),
            literal(0.0).label("value"),
            add_days(ended.c.ended_at, renewal_window_days, dialect).label("at"),
        )
        .select_from(ended)
        .outerjoin(renewed, renewed.c.campaign_id == ended.c.campaign_id)
        .outerjoin(UserRow, UserRow.id == ended.c.user_id)
        .where(unrenewed, ended.c.campaign_id.is_not(None), ended.c.campaign_id.not_in(explicit_campaigns))
    )
    explicit = _explicit_units(
        "renewal_success", start, end, unit_key=MetricObservationRow.dims["campaign_id"].as_string()
    )
    return union_all(successes, failures, explicit).subquery("units")


# Events counted per active user by the per-user metrics, and the activity-table column holding each count.
COUNTED_EVENTS = {"error_occurred": "errors", "support_ticket_opened": "tickets"}


class ActivityTables:
    """Per (user, UTC day) event counts of a window, computed once into a temporary table and shared by every
    per-active-user metric and its daily series: one scan of the window's events instead of one per metric."""

    def __init__(self, connection: Connection, *, daily: bool = True) -> None:
        self.connection = connection
        self.daily = daily  # False: one row per user (its first day), for callers that need no daily series
        self._tables: dict[tuple[datetime, datetime], Table] = {}

    def table(self, start: datetime, end: datetime) -> Table:
        if (start, end) not in self._tables:
            day = utc_day(EventRow.timestamp, self.connection.dialect)
            counts = [
                func.sum(case((EventRow.name == name, 1), else_=0)).label(column)
                for name, column in COUNTED_EVENTS.items()
            ]
            keys = (EventRow.user_id, day) if self.daily else (EventRow.user_id,)
            activity = (
                select(
                    EventRow.user_id.label("user_id"),
                    (day if self.daily else func.min(day)).label("day"),
                    *counts,
                )
                .where(_in(EventRow.timestamp, start, end), EventRow.user_id.is_not(None))
                .group_by(*keys)
            )
            statement = CreateTableAs(activity, f"fl_activity_{uuid.uuid4().hex[:12]}", temporary=True)
            self.connection.execute(statement)
            self._tables[(start, end)] = statement.table
        return self._tables[(start, end)]

    def close(self) -> None:
        for table in self._tables.values():
            self.connection.execute(DropTable(table))
        self._tables.clear()


def per_active_user_units(activity: Table, event_name: str) -> Subquery:
    """One unit per active user (any event in the window): value = that user's `event_name` events."""
    column = activity.c[COUNTED_EVENTS[event_name]]
    per_user = (
        select(activity.c.user_id, cast(func.sum(column), Float).label("value"), func.min(activity.c.day).label("at"))
        .group_by(activity.c.user_id)
        .subquery()
    )  # fmt: skip
    return (
        select(_persona().label("persona"), per_user.c.value, per_user.c.at)
        .select_from(per_user)
        .outerjoin(UserRow, UserRow.id == per_user.c.user_id)
        .subquery("units")
    )


def custom_units(name: str, start: datetime, end: datetime) -> Subquery:
    """A custom metric: explicit observations only."""
    return _explicit_units(name, start, end).subquery("units")


@contextmanager
def materialized(connection: Connection, units: Subquery) -> Iterator[Table]:
    """The units in a temporary table for the duration of the block (dropped after)."""
    statement = CreateTableAs(select(units), f"fl_units_{uuid.uuid4().hex[:12]}", temporary=True)
    connection.execute(statement)
    yield statement.table
    # Not in a `finally`: after a failed statement PostgreSQL refuses every command until rollback (which drops
    # the table anyway), and a DROP there would hide the real error.
    connection.execute(DropTable(statement.table))


def aggregate_units(connection: Connection, units: FromClause, *, percentiles: bool) -> list[UnitAggregate]:
    """Per persona, then overall: n, Σ, Σ² (and nearest-rank p50/p90 when asked, via window functions).

    Without percentiles the overall row is the sum of the persona rows (every unit has exactly one persona), so
    the units are scanned once.
    """
    if not percentiles:
        rows = connection.execute(
            select(units.c.persona, func.count(), func.sum(units.c.value), func.sum(units.c.value * units.c.value))
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


def _with_overall(rows: list[DailyAggregate]) -> list[DailyAggregate]:
    """Add the everyone-rows by summing personas per day (each unit belongs to exactly one persona)."""
    totals: dict[str, tuple[int, float]] = {}
    for row in rows:
        n, total = totals.get(row.day, (0, 0.0))
        totals[row.day] = (n + row.n, total + row.total)
    return rows + [DailyAggregate(None, day, n, total) for day, (n, total) in sorted(totals.items())]


def daily_units(connection: Connection, units: FromClause) -> list[DailyAggregate]:
    """Per persona, then overall, per UTC day of the unit's `at`: n and Σvalue."""
    day = utc_day(units.c.at, connection.dialect).label("day")
    by_persona = connection.execute(
        select(units.c.persona, day, func.count(), func.sum(units.c.value)).group_by(units.c.persona, day)
    ).all()
    return _with_overall([DailyAggregate(r[0], r[1], int(r[2]), float(r[3] or 0)) for r in by_persona])


def daily_event_rate(connection: Connection, activity: Table, event_name: str) -> list[DailyAggregate]:
    """Per persona and overall, per UTC day: active users that day (n) and `event_name` events that day (total)."""
    joined = (
        select(_persona().label("persona"), activity.c.day, activity.c[COUNTED_EVENTS[event_name]].label("events"))
        .select_from(activity)
        .outerjoin(UserRow, UserRow.id == activity.c.user_id)
        .subquery()
    )  # fmt: skip
    rows = connection.execute(
        select(joined.c.persona, joined.c.day, func.count(), func.sum(joined.c.events))
        .group_by(joined.c.persona, joined.c.day)
    ).all()  # fmt: skip
    return _with_overall([DailyAggregate(r[0], r[1], int(r[2]), float(r[3] or 0)) for r in rows])


def known_personas(connection: Connection) -> list[str]:
    return list(connection.execute(select(UserRow.persona).distinct().order_by(UserRow.persona)).scalars())
