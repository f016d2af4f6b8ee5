"""Dialect-aware SQL expressions shared by the repositories (SQLite and PostgreSQL give the same answers)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Interval, cast, func, literal, literal_column
from sqlalchemy.engine import Dialect


def seconds_between(later: Any, earlier: Any, dialect: Dialect) -> ColumnElement[float]:
    """later − earlier in seconds, both times rounded to the millisecond, so both dialects agree to the digit.

    SQLite's julianday is a float of days that keeps milliseconds; PostgreSQL's microseconds are rounded the
    same way (timestamps are stored as UTC text on SQLite and timestamptz on PostgreSQL).
    """
    if dialect.name == "sqlite":
        return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86_400.0, 3), Float)
    half_millisecond = literal(timedelta(microseconds=500), Interval())
    later_ms = func.date_trunc("milliseconds", later + half_millisecond)
    earlier_ms = func.date_trunc("milliseconds", earlier + half_millisecond)
    return cast(func.extract("epoch", later_ms - earlier_ms), Float)


def utc_day(column: Any, dialect: Dialect) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp as 'YYYY-MM-DD' text, for daily series."""
    if dialect.name == "sqlite":
        return func.substr(column, 1, 10)
    return func.to_char(func.timezone("UTC", column), literal_column("'YYYY-MM-DD'"))


def nearest_rank(count: Any, percent: int) -> ColumnElement[int]:
    """ceil(count × percent / 100) with integer arithmetic (SQLite has no ceil), the nearest-rank percentile."""
    return cast((count * percent + 99) // 100, Integer)  # // is integer division on every backend


def less_than_days_after(later: Any, earlier: Any, days: float, dialect: Dialect) -> ColumnElement[bool]:
    """later < earlier + days, comparing instants (not text) on both dialects."""
    if dialect.name == "sqlite":
        return func.julianday(later) < func.julianday(earlier) + days
    return later < earlier + func.make_interval(0, 0, 0, 0, 0, 0, days * 86_400)


def add_days(column: Any, days: int, dialect: Dialect) -> ColumnElement[Any]:
    """column + days, as a timestamp (PostgreSQL) or UTC text whose first 10 characters are the day (SQLite)."""
    if dialect.name == "sqlite":
        return func.datetime(column, f"+{int(days)} days")
    return column + func.make_interval(0, 0, 0, int(days))
