"""SQL for the per-active-user metrics (error rate, support incidents): a unit is a user with any event in the
window, its value the user's events of one kind. Their inputs go into temporary tables once per window
(ActivityTables) and every such metric, and its daily series, reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Connection,
    CreateTableAs,
    Float,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.schema import DropTable

from store.models import UNASSIGNED_PERSONA, EventRow, UserRow
from store.repositories.metrics import DailyAggregate, with_overall
from store.sql import utc_day

AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def _persona() -> ColumnElement[str]:
    return func.coalesce(UserRow.persona, literal(UNASSIGNED_PERSONA))


def _in(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


# Events counted per active user by the per-user metrics, and the activity-table column holding each count.
COUNTED_EVENTS = {"error_occurred": "errors", "support_ticket_opened": "tickets"}


class ActivityTables:
    """The per-active-user metrics' inputs of a window, each computed once into a temporary table and shared by
    every per-active-user metric of that window.

    `users(start, end)`: one row per active user (persona, first day, counted events). The active users are found
    by one index probe of (user_id, timestamp) per user rather than a scan of the window's events (every user id
    of a stored event has its users row, written in the same transaction as the event); only the counted events
    are read. `days(start, end)`: per persona and UTC day, the users active that day and their counted events,
    for daily series; filled day by day (grouping one day's events by user is much cheaper, on SQLite and
    PostgreSQL, than grouping the window's events by user and day at once).
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._tables: dict[tuple[str, datetime, datetime], Table] = {}

    def users(self, start: datetime, end: datetime) -> Table:
        return self._table("users", start, end, lambda: [self._users(start, end)])

    def days(self, start: datetime, end: datetime) -> Table:
        return self._table("days", start, end, lambda: self._days(start, end))

    def close(self) -> None:
        for table in self._tables.values():
            self.connection.execute(DropTable(table))
        self._tables.clear()

    def _table(
        self, kind: str, start: datetime, end: datetime, parts: Callable[[], list[AnySelect]]
    ) -> Table:
        if (kind, start, end) not in self._tables:
            first, *rest = parts()
            statement = CreateTableAs(first, f"fl_activity_{uuid.uuid4().hex[:12]}", temporary=True)
            self.connection.execute(statement)
            for part in rest:
                self.connection.execute(
                    insert(statement.table).from_select(list(part.selected_columns.keys()), part)
                )
            self._tables[(kind, start, end)] = statement.table
        return self._tables[(kind, start, end)]

    def _users(self, start: datetime, end: datetime) -> AnySelect:
        first_event = (
            select(func.min(EventRow.timestamp))
            .where(EventRow.user_id == UserRow.id, _in(EventRow.timestamp, start, end))
            .correlate(UserRow)
            .scalar_subquery()
        )
        # MATERIALIZED: the probe runs once per user, not once more for the filter below.
        active = (
            select(UserRow.id.label("user_id"), _persona().label("persona"), first_event.label("first_at"))
            .cte("active")
            .prefix_with("MATERIALIZED")
        )
        day = utc_day(active.c.first_at, self.connection.dialect).label("day")
        statement = select(active.c.user_id, active.c.persona, day)
        for name, column in COUNTED_EVENTS.items():  # one index range per event name
            counted = (
                select(EventRow.user_id, func.count().label(column))
                .where(EventRow.name == name, _in(EventRow.timestamp, start, end))
                .group_by(EventRow.user_id)
                .subquery(column)
            )
            statement = statement.add_columns(func.coalesce(counted.c[column], 0).label(column))
            statement = statement.outerjoin(counted, counted.c.user_id == active.c.user_id)
        return statement.where(active.c.first_at.is_not(None))

    def _days(self, start: datetime, end: datetime) -> list[AnySelect]:
        """One statement per UTC day the window touches."""
        first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
        return [self._day(start, end, first + timedelta(days=i)) for i in range((last - first).days + 1)]

    def _day(self, start: datetime, end: datetime, day: date) -> AnySelect:
        """Per persona, the users active on `day` (within the window) and their counted events."""
        day_start = datetime.combine(day, time(), UTC)
        counts = [
            func.sum(case((EventRow.name == name, 1), else_=0)).label(column)
            for name, column in COUNTED_EVENTS.items()
        ]
        per_user = (
            select(EventRow.user_id, *counts)
            .where(
                _in(EventRow.timestamp, max(start, day_start), min(end, day_start + timedelta(days=1))),
                EventRow.user_id.is_not(None),
            )
            .group_by(EventRow.user_id)
            .subquery("per_user")
        )
        persona = _persona().label("persona")
        totals = [func.sum(per_user.c[column]).label(column) for column in COUNTED_EVENTS.values()]
        label = cast(literal(day.isoformat()), String).label("day")
        return (
            select(persona, label, func.count().label("active_users"), *totals)
            .select_from(per_user)
            .outerjoin(UserRow, UserRow.id == per_user.c.user_id)
            .group_by(persona)
        )


def per_active_user_units(users: Table, event_name: str) -> Subquery:
    """One unit per active user (ActivityTables.users): value = that user's `event_name` events."""
    value = cast(users.c[COUNTED_EVENTS[event_name]], Float)
    return select(users.c.persona, value.label("value"), users.c.day.label("at")).subquery("units")


def daily_event_rate(connection: Connection, days: Table, event_name: str) -> list[DailyAggregate]:
    """Per persona and overall, per UTC day (ActivityTables.days): active users that day (n) and `event_name`
    events that day (total)."""
    rows = connection.execute(
        select(days.c.persona, days.c.day, days.c.active_users, days.c[COUNTED_EVENTS[event_name]])
    )
    return with_overall([DailyAggregate(r[0], r[1], int(r[2]), float(r[3] or 0)) for r in rows])
