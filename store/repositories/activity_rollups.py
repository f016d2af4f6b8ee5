"""Per (UTC day, user) activity counts: a rollup of sealed days, read together with the raw events of open days.

The per-active-user figures (active users, errors, tickets, tasks, feature reuse, payments) only need, per user
and day, how many events of each kind there were. `activity_by_user_day(start, end)` gives those rows for any
window: the window's whole UTC days that are *sealed* come from daily_user_activity, everything else (the partial
first and last day, days not rolled up yet, stale days) is grouped from events in the same statement. A sealed day
is one listed in activity_rollup_days and not in activity_stale_days, so the rows equal a raw query's at every
moment, whether or not the worker has run.

How days stay right:
- The worker rolls up a day only once it is closed: its end at least CLOSE_GRACE before now.
- Ingestion marks every closed day it writes events for as stale (`mark_stale_days`, same transaction). On
  PostgreSQL it first takes a shared advisory lock per day, and the worker's refresh of a day takes that day's
  lock exclusively before it deletes the marker and recomputes the day from events. Whichever comes first makes
  the other wait: either the refresh's recompute (a later statement, with a fresh snapshot under READ
  COMMITTED) sees the ingested events, or the ingestion inserts a new marker after the refresh and the day is
  stale again. Ingesters of the same day share the lock; once the day's marker is committed they do not wait
  for each other at all (an earlier version upserted the marker to lock its row, which queued every concurrent
  batch of a day behind one another and left a dead row version per batch). SQLite serialises writers anyway.
- Events for a day that is not closed yet are not marked: no rollup of that day exists or is being made, as long
  as no ingest transaction lasts longer than CLOSE_GRACE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)

from store.database import Database
from store.models import (
    UNASSIGNED_PERSONA,
    ActivityRollupDayRow,
    ActivityStaleDayRow,
    DailyUserActivityRow,
    EventRow,
    ReportRow,
    UserRow,
)
from store.sql import JsonProperties, insert_for, utc_day

AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"

# A day is closed (may be rolled up) once it ended this long ago: longer than any ingest transaction lasts.
CLOSE_GRACE = timedelta(minutes=10)
ONE_DAY = timedelta(days=1)

# Column of daily_user_activity → the events it counts (payments also sum `amount` into revenue_usd).
COUNTED: dict[str, str | None] = {
    "events": None,  # every event
    "errors": "error_occurred",
    "tickets": "support_ticket_opened",
    "tasks_completed": "task_completed",
    "tasks_failed": "task_failed",
    "feature_uses": "feature_used",
    "payments": "payment_succeeded",
}
COLUMNS = ("day", "user_id", "persona", *COUNTED, "tasks_automated", "revenue_usd")


def _day_text(day: date) -> str:
    return day.isoformat()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def last_closed_day(now: datetime) -> date:
    """The latest UTC day whose end lies at least CLOSE_GRACE before `now`."""
    return (now.astimezone(UTC) - CLOSE_GRACE).date() - ONE_DAY


# --------------------------------------------------------------------------------------------------------------
# Ingestion: stale markers


# Key class of the per-day roll-up locks: the two-int4 advisory key space (surveys use 0x5355), day ordinals.
ROLLUP_DAY_LOCK_CLASS = 0x5244


def mark_stale_days(connection: Connection, timestamps: Iterable[datetime], now: datetime) -> None:
    """Mark the closed days among these event times stale, so readers take them from events until the worker
    rolls them up again. On PostgreSQL under each day's shared lock, which orders this transaction against a
    concurrent roll-up of the day (see the module docstring)."""
    last_closed = last_closed_day(now)
    closed = sorted({day for moment in timestamps if (day := moment.astimezone(UTC).date()) <= last_closed})
    if not closed:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                "SELECT pg_advisory_xact_lock_shared(:lock_class, d) "
                "FROM unnest(CAST(:days AS int[])) AS d ORDER BY d"
            ),
            {"lock_class": ROLLUP_DAY_LOCK_CLASS, "days": [day.toordinal() for day in closed]},
        ).all()
    statement = insert_for(connection, ActivityStaleDayRow.__table__)
    connection.execute(
        statement.on_conflict_do_nothing(index_elements=["day"]),
        [{"day": _day_text(day), "touches": 1} for day in closed],
    )


def follow_persona_changes(connection: Connection, user_ids: Sequence[str]) -> None:
    """Copy these users' current persona onto the rows that carry it: their rolled-up days and the reports they
    sent. Call after their users rows were written, in the same transaction: it holds their locks, which a
    concurrent roll-up of a day they were active on shares before reading their persona, and which any write of
    their reports takes first."""
    if not user_ids:
        return
    for row in (DailyUserActivityRow, ReportRow):
        current = (
            select(func.coalesce(UserRow.persona, literal(UNASSIGNED_PERSONA)))
            .where(UserRow.id == row.user_id)
            .scalar_subquery()
        )
        connection.execute(update(row).where(row.user_id.in_(sorted(user_ids))).values(persona=current))


# --------------------------------------------------------------------------------------------------------------
# The worker: rolling up closed days


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """Closed days to (re)compute: never rolled up, or stale. Most recent first (what dashboards read)."""

    days: list[date]
    stale: set[date]  # rolled up before, then touched by a late event


def plan_refresh(connection: Connection, now: datetime) -> RollupPlan:
    first_event, last_event = connection.execute(
        select(func.min(EventRow.timestamp), func.max(EventRow.timestamp))
    ).one()
    if first_event is None:
        return RollupPlan([], set())
    first = _as_utc(first_event).date()
    # Days after the last event have nothing to roll up (reading them from events costs nothing); an event that
    # arrives for one later makes it part of the range then.
    last_closed = min(last_closed_day(now), _as_utc(last_event).date())
    rolled = set(connection.execute(select(ActivityRollupDayRow.day)).scalars())
    stale = {date.fromisoformat(day) for day in connection.execute(select(ActivityStaleDayRow.day)).scalars()}
    stale = {day for day in stale if day <= last_closed_day(now)}
    missing = {
        first + timedelta(days=i)
        for i in range((last_closed - first).days + 1)
        if _day_text(first + timedelta(days=i)) not in rolled
    }
    return RollupPlan(sorted(stale | missing, reverse=True), stale - missing)


def roll_up_day(connection: Connection, day: date, now: datetime) -> int:
    """Recompute one closed day's rows from its events (call in its own write transaction); returns the users."""
    day_text = _day_text(day)
    start = _day_start(day)
    # The day's row first: an upsert locks it, so two workers (or a worker and the CLI) rolling up the same day
    # take turns instead of inserting the same rows twice. Readers see the day as rolled up only at commit.
    table = ActivityRollupDayRow.__table__
    upsert = insert_for(connection, table)
    connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["day"], set_={"rolled_up_at": upsert.excluded.rolled_up_at}
        ),
        {"day": day_text, "rolled_up_at": now},
    )
    if connection.dialect.name == "postgresql":
        # The day's users first, shared, in id order (as ingestion takes them): a concurrent persona change waits
        # for this roll-up, or this waits for it and copies the new persona; either way no row keeps an old one.
        active = select(EventRow.user_id).where(
            EventRow.timestamp >= start, EventRow.timestamp < start + ONE_DAY
        )
        connection.execute(
            select(UserRow.id).where(UserRow.id.in_(active)).order_by(UserRow.id).with_for_update(read=True)
        ).all()
        # Then the day's lock, exclusive: it waits for ingest transactions that stored events of this day, so
        # the recompute below (a new statement, a new snapshot) sees their events; later ones wait for this
        # transaction, then mark the day stale again.
        connection.execute(select(func.pg_advisory_xact_lock(ROLLUP_DAY_LOCK_CLASS, day.toordinal())))
    connection.execute(delete(ActivityStaleDayRow).where(ActivityStaleDayRow.day == day_text))
    connection.execute(delete(DailyUserActivityRow).where(DailyUserActivityRow.day == day_text))
    per_user = _raw_counts(connection, [(start, start + ONE_DAY)], day=day_text).subquery("per_user")
    inserted = connection.execute(
        DailyUserActivityRow.__table__.insert()  # type: ignore[attr-defined]
        .from_select(list(COLUMNS), select(*(per_user.c[name] for name in COLUMNS)))
        .returning(DailyUserActivityRow.user_id)
    ).all()
    return len(inserted)


@dataclass(frozen=True, slots=True)
class RefreshReport:
    days: int  # days rolled up by this call
    stale: int  # of those, days a late event had made stale
    remaining: int  # days still to do (when max_days stopped the call)
    users: int  # (day, user) rows written


def refresh_rollups(
    database: Database,
    now: datetime,
    *,
    max_days: int | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_day: Callable[[date], None] | None = None,
) -> RefreshReport:
    """Roll up the closed days that need it, most recent first, each in its own short write transaction (so
    ingestion is never held up for long); at most `max_days` per call."""
    with database.read() as connection:
        plan = plan_refresh(connection, now)
    todo = plan.days if max_days is None else plan.days[:max_days]
    if on_plan is not None:
        on_plan(len(todo))
    users = 0
    for day in todo:
        with database.write() as connection:
            users += roll_up_day(connection, day, now)
        if on_day is not None:
            on_day(day)
    if todo:
        with database.write() as connection:
            update_planner_statistics(connection)
    return RefreshReport(len(todo), len(plan.stale & set(todo)), len(plan.days) - len(todo), users)


def update_planner_statistics(connection: Connection) -> None:
    """Refresh the planner's statistics of the tables the dashboard reads, after rolling up.

    SQLite: with `users` analysed the planner looks personas up in the covering (id, persona) index instead of
    the primary key and the row (about 3× faster per lookup); without statistics it prefers the unique index.
    PostgreSQL: the rollup and the per-entity tables change in bulk here and at import, faster than autovacuum
    (where it runs at all) analyses them.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("ANALYZE users")
    else:
        connection.exec_driver_sql(
            "ANALYZE daily_user_activity, activity_rollup_days, users, reports, campaigns"
        )


# --------------------------------------------------------------------------------------------------------------
# Readers


def activity_by_user_day(connection: Connection, start: datetime, end: datetime) -> AnySelect:
    """Per (UTC day, user) with events in [start, end): the COLUMNS counts. Sealed whole days from the rollup,
    the rest grouped from events; one statement (a UNION ALL), no event row leaves the database."""
    sealed = sealed_days(connection, start, end)
    raw_ranges = _open_ranges(start, end, sealed)
    parts: list[AnySelect] = []
    if sealed:
        t = DailyUserActivityRow
        in_sealed = or_(*(and_(t.day >= _day_text(a), t.day <= _day_text(b)) for a, b in _runs(sealed)))
        parts.append(select(*(t.__table__.c[name] for name in COLUMNS)).where(in_sealed))
    if raw_ranges:
        parts.append(_raw_counts(connection, raw_ranges))
    if not parts:  # an empty window
        return _raw_counts(connection, [(start, start)])
    return parts[0] if len(parts) == 1 else select(union_all(*parts).subquery("activity"))


def sealed_days(connection: Connection, start: datetime, end: datetime) -> list[date]:
    """The whole UTC days inside [start, end) that are rolled up and not stale, oldest first."""
    first = start.astimezone(UTC).date()
    if _day_start(first) < start:
        first += ONE_DAY
    last = end.astimezone(UTC).date() - ONE_DAY  # the day before the one `end` falls in (or starts)
    if last < first:
        return []
    stale = select(ActivityStaleDayRow.day)
    rows = connection.execute(
        select(ActivityRollupDayRow.day)
        .where(
            ActivityRollupDayRow.day >= _day_text(first),
            ActivityRollupDayRow.day <= _day_text(last),
            ActivityRollupDayRow.day.not_in(stale),
        )
        .order_by(ActivityRollupDayRow.day)
    ).scalars()
    return [date.fromisoformat(day) for day in rows]


def _open_ranges(start: datetime, end: datetime, sealed: Sequence[date]) -> list[tuple[datetime, datetime]]:
    """[start, end) minus the sealed days, as half-open time ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    cursor = start
    for first, last in _runs(sealed):
        if _day_start(first) > cursor:
            ranges.append((cursor, _day_start(first)))
        cursor = _day_start(last) + ONE_DAY
    if cursor < end:
        ranges.append((cursor, end))
    return ranges


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + ONE_DAY == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _raw_counts(
    connection: Connection, ranges: Sequence[tuple[datetime, datetime]], *, day: str | None = None
) -> AnySelect:
    """The COLUMNS grouped from the events of these time ranges (per UTC day, or all as `day`)."""
    json = JsonProperties(connection.dialect)

    def count_of(name: str | None) -> ColumnElement[int]:
        return func.count() if name is None else func.sum(case((EventRow.name == name, 1), else_=0))

    completed = EventRow.name == "task_completed"
    paid = EventRow.name == "payment_succeeded"
    day_column: ColumnElement[Any] = (
        literal(day).label("day") if day is not None else utc_day(EventRow.timestamp, connection.dialect)
    )
    in_ranges = or_(*(and_(EventRow.timestamp >= a, EventRow.timestamp < b) for a, b in ranges))
    per_user_day = (
        select(
            day_column.label("day"),
            EventRow.user_id.label("user_id"),
            *(count_of(name).label(column) for column, name in COUNTED.items()),
            func.sum(case((and_(completed, json.is_true("automated")), 1), else_=0)).label("tasks_automated"),
            func.sum(case((paid, json.number("amount")))).label("revenue_usd"),
        )
        .where(in_ranges, EventRow.user_id.is_not(None))
        .group_by(*([EventRow.user_id] if day is not None else [day_column, EventRow.user_id]))
        .subquery("per_user_day")
    )
    # Each user's persona joined once per (day, user), after grouping.
    persona = func.coalesce(UserRow.persona, literal(UNASSIGNED_PERSONA)).label("persona")
    return (
        select(*(persona if name == "persona" else per_user_day.c[name] for name in COLUMNS))
        .select_from(per_user_day)
        .outerjoin(UserRow, UserRow.id == per_user_day.c.user_id)
    )


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
