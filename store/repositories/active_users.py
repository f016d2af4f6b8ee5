"""SQL for the per-active-user metrics (error rate, support incidents): a unit is a user with any event in the
window, its value the user's events of one kind. Their inputs go into temporary tables once per window
(ActivityTables) and every such metric, and its daily series, reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    Subquery,
    TableClause,
    case,
    cast,
    func,
    literal,
    select,
)

from store.models import UNASSIGNED_PERSONA, UserRow
from store.repositories.activity_rollups import activity_by_user_day
from store.repositories.metrics import DailyAggregate, with_overall
from store.sql import create_temporary_table, drop_temporary_table

AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def _persona() -> ColumnElement[str]:
    return func.coalesce(UserRow.persona, literal(UNASSIGNED_PERSONA))


# Events counted per active user by the per-user metrics, and the activity-table column holding each count.
COUNTED_EVENTS = {"error_occurred": "errors", "support_ticket_opened": "tickets"}


# Per-user sums of a window: the counted events above, and what the KPIs need (store.repositories.kpis).
USER_SUMS = (
    "errors",
    "tickets",
    "tasks_completed",
    "tasks_automated",
    "tasks_failed",
    "payments",
    "revenue_usd",
)
SHARED_KEY = "fl_shared_activity_tables"


def per_user_activity(connection: Connection, start: datetime, end: datetime) -> AnySelect:
    """Per user active in [start, end): persona, first active UTC day, the USER_SUMS and the number of UTC days
    with feature use (feature_days), from the per (day, user) counts of activity_rollups."""
    days = activity_by_user_day(connection, start, end).subquery("activity")
    return select(
        days.c.user_id,
        func.max(days.c.persona).label("persona"),  # every row of a user carries its current persona
        func.min(days.c.day).label("day"),
        *(func.sum(days.c[column]).label(column) for column in USER_SUMS),
        func.sum(case((days.c.feature_uses > 0, 1), else_=0)).label("feature_days"),  # one row per day
    ).group_by(days.c.user_id)


class ActivityTables:
    """Per-active-user inputs of a window, each computed once into a temporary table and shared by every
    per-active-user metric (and, within `shared_activity`, the KPIs) of that window.

    `users(start, end)`: per_user_activity, one row per active user. `days(start, end)`: per persona and UTC day,
    the users active that day and their counted events, for daily series. Both group the per (day, user) counts
    of activity_rollups: sealed days come from the rollup, open days from events.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._tables: dict[tuple[str, datetime, datetime], TableClause] = {}

    @staticmethod
    def shared(connection: Connection) -> ActivityTables | None:
        """The tables of the enclosing `shared_activity` block on this connection, if any."""
        found = connection.info.get(SHARED_KEY)
        return found if isinstance(found, ActivityTables) else None

    def users(self, start: datetime, end: datetime) -> TableClause:
        return self._table("users", start, end, lambda: per_user_activity(self.connection, start, end))

    def days(self, start: datetime, end: datetime) -> TableClause:
        return self._table("days", start, end, lambda: self._days(start, end))

    def close(self) -> None:
        for table in self._tables.values():
            drop_temporary_table(self.connection, table)
        self._tables.clear()

    def _table(
        self, kind: str, start: datetime, end: datetime, build: Callable[[], AnySelect]
    ) -> TableClause:
        if (kind, start, end) not in self._tables:
            self._tables[(kind, start, end)] = create_temporary_table(self.connection, build(), "fl_activity")
        return self._tables[(kind, start, end)]

    def _days(self, start: datetime, end: datetime) -> AnySelect:
        """Per persona and UTC day: the users active that day (within the window) and their counted events."""
        days = activity_by_user_day(self.connection, start, end).subquery("activity")
        return select(
            days.c.persona,
            days.c.day,
            func.count().label("active_users"),
            *(func.sum(days.c[column]).label(column) for column in COUNTED_EVENTS.values()),
        ).group_by(days.c.persona, days.c.day)


@contextmanager
def shared_activity(connection: Connection) -> Iterator[ActivityTables]:
    """Within the block, every metric report and KPI computation on `connection` shares one ActivityTables (a
    dashboard computes each window's per-user activity once, not once for the KPIs and once for the metrics).
    The tables are dropped at the end (not on error: the rollback discards them, as in metrics.materialized)."""
    outer = ActivityTables.shared(connection)
    if outer is not None:  # nested: the outer block owns them
        yield outer
        return
    tables = ActivityTables(connection)
    connection.info[SHARED_KEY] = tables
    try:
        yield tables
    finally:
        connection.info.pop(SHARED_KEY, None)
    tables.close()


@contextmanager
def activity_tables(connection: Connection) -> Iterator[ActivityTables]:
    """The shared tables when inside `shared_activity`, else private ones dropped at the end of the block."""
    shared = ActivityTables.shared(connection)
    if shared is not None:
        yield shared
        return
    tables = ActivityTables(connection)
    yield tables
    tables.close()  # on failure the transaction's rollback discards the temporary tables instead


def per_active_user_units(users: TableClause, event_name: str) -> Subquery:
    """One unit per active user (ActivityTables.users): value = that user's `event_name` events."""
    value = cast(users.c[COUNTED_EVENTS[event_name]], Float)
    return select(users.c.persona, value.label("value"), users.c.day.label("at")).subquery("units")


def daily_event_rate(connection: Connection, days: TableClause, event_name: str) -> list[DailyAggregate]:
    """Per persona and overall, per UTC day (ActivityTables.days): active users that day (n) and `event_name`
    events that day (total)."""
    rows = connection.execute(
        select(days.c.persona, days.c.day, days.c.active_users, days.c[COUNTED_EVENTS[event_name]])
    )
    return with_overall([DailyAggregate(r[0], r[1], int(r[2]), float(r[3] or 0)) for r in rows])
