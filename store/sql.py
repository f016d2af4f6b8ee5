"""Dialect-aware SQL expressions shared by the repositories (SQLite and PostgreSQL give the same answers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, cast, func, literal_column
from sqlalchemy.engine import Dialect


def seconds_between(later: Any, earlier: Any, dialect: Dialect) -> ColumnElement[float]:
    """later − earlier in seconds (timestamps stored as UTC text on SQLite, timestamptz on PostgreSQL)."""
    if dialect.name == "sqlite":
        # julianday is a float of days: round to milliseconds so whole seconds come back whole.
        return cast(func.round((func.julianday(later) - func.julianday(earlier)) * 86_400.0, 3), Float)
    return cast(func.extract("epoch", later - earlier), Float)


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
