"""Overview queries for the demo and `feedbackloop events stats`: all aggregation happens in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, distinct, func, select

from store.models import EventRow, UserRow


@dataclass(frozen=True, slots=True)
class EventOverview:
    events: int
    users: int
    first_timestamp: datetime | None
    last_timestamp: datetime | None


def event_overview(connection: Connection) -> EventOverview:
    events, first, last = connection.execute(
        select(func.count(), func.min(EventRow.timestamp), func.max(EventRow.timestamp))
    ).one()
    users = connection.execute(select(func.count()).select_from(UserRow)).scalar_one()
    return EventOverview(int(events), int(users), first, last)


def users_by_persona(connection: Connection) -> dict[str, int]:
    rows = connection.execute(
        select(UserRow.persona, func.count()).group_by(UserRow.persona).order_by(func.count().desc())
    )
    return {persona: int(count) for persona, count in rows}


def events_by_name(connection: Connection, limit: int = 12) -> list[tuple[str, int]]:
    rows = connection.execute(
        select(EventRow.name, func.count()).group_by(EventRow.name).order_by(func.count().desc()).limit(limit)
    )
    return [(name, int(count)) for name, count in rows]


def event_rate_by_persona(
    connection: Connection, *, event_name: str, start: datetime, end: datetime, feature: str | None = None
) -> dict[str, tuple[int, int]]:
    """Per persona: (count of `event_name` in [start, end), active users with any event in [start, end))."""
    in_window = and_(EventRow.timestamp >= start, EventRow.timestamp < end)
    active = (
        select(UserRow.persona, func.count(distinct(EventRow.user_id)).label("active"))
        .select_from(EventRow)
        .join(UserRow, UserRow.id == EventRow.user_id)
        .where(in_window)
        .group_by(UserRow.persona)
    ).subquery()
    matching = EventRow.name == event_name
    if feature is not None:
        matching = and_(matching, EventRow.properties["feature"].as_string() == feature)
    counted = (
        select(UserRow.persona, func.count().label("events"))
        .select_from(EventRow)
        .join(UserRow, UserRow.id == EventRow.user_id)
        .where(in_window, matching)
        .group_by(UserRow.persona)
    ).subquery()
    rows = connection.execute(
        select(active.c.persona, func.coalesce(counted.c.events, 0), active.c.active).outerjoin(
            counted, counted.c.persona == active.c.persona
        )
    )
    return {persona: (int(events), int(active_users)) for persona, events, active_users in rows}


def find_event(connection: Connection, *, name: str, property_name: str, value: str) -> datetime | None:
    """Timestamp of the first event called `name` whose property equals `value` (e.g. a deployment version)."""
    return connection.execute(
        select(func.min(EventRow.timestamp)).where(
            EventRow.name == name, EventRow.properties[property_name].as_string() == value
        )
    ).scalar_one_or_none()
