"""Dialect-aware SQL expressions shared by the repositories (SQLite and PostgreSQL give the same answers)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Interval,
    Select,
    TableClause,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    table,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Join
from sqlalchemy.sql.visitors import InternalTraversal

from store.models import EventRow

AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def insert_for(connection: Connection, table: Any) -> Any:
    """INSERT for the connection's dialect, so a repository can add ON CONFLICT … DO NOTHING / DO UPDATE (both
    dialects spell it the same way in SQLAlchemy) and RETURNING."""
    return (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)


class _ScanLeftFirst(Join):
    inherit_cache = True


def scan_left_first(left: Any, right: Any, onclause: Any) -> Join:
    """left JOIN right ON onclause, which SQLite must run with `left` as the outer loop (CROSS JOIN pins it).

    For a small temporary table of claimed users joined to a big table: without sqlite_stat1 SQLite takes an
    equality on an index prefix (experiment_id = ?) to match about ten rows, so it scanned every row of the
    experiment and probed the temporary table for each (a second per 10,000 users at a million). PostgreSQL
    plans from statistics (the temporary table is analysed) and gets a plain JOIN.
    """
    return _ScanLeftFirst(left, right, onclause)


@compiles(_ScanLeftFirst, "sqlite")
def _cross_join(join: _ScanLeftFirst, compiler: Any, **kw: Any) -> str:
    rendered: str = compiler.visit_join(join, **kw)
    left = join.left._compiler_dispatch(compiler, **{**kw, "asfrom": True, "from_linter": None})
    assert rendered.startswith(f"{left} JOIN "), rendered
    return f"{left} CROSS JOIN {rendered[len(left) + len(' JOIN ') :]}"


@contextmanager
def index_probe_joins(connection: Connection) -> Iterator[None]:
    """PostgreSQL joins by nested loop (an index probe per row of the small side) for the statements inside.

    For a chunk of claimed users joined to a big table by its primary key: the planner prices the probes at
    random_page_cost and picks a hash join over a sequential scan of the whole table, 3-5 times slower at
    200,000 users and growing with the table, not the chunk. Transaction-local, restored on the way out; SQLite
    needs nothing (scan_left_first pins its order).
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    names = ("enable_hashjoin", "enable_mergejoin")
    previous = connection.exec_driver_sql(
        "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
    ).one()
    for name in names:
        connection.exec_driver_sql(f"SELECT set_config('{name}', 'off', true)")
    yield
    # Not in a `finally`: after a failed statement PostgreSQL refuses every command until rollback, which
    # restores the settings anyway.
    for name, value in zip(names, previous, strict=True):
        connection.execute(text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value})


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


class JsonProperties:
    """Event properties read the same way on SQLite (JSON text) and PostgreSQL (JSONB)."""

    def __init__(self, dialect: Dialect) -> None:
        self.sqlite = dialect.name == "sqlite"

    def number(self, key: str) -> ColumnElement[float]:
        """The property as a float when it is a JSON number, else NULL (so a stray string never fails a cast)."""
        if self.sqlite:
            path = f'$."{key}"'
            sqlite_number = func.json_type(EventRow.properties, path).in_(("integer", "real"))
            return case((sqlite_number, cast(func.json_extract(EventRow.properties, path), Float)))
        jsonb_number = func.jsonb_typeof(EventRow.properties[key]) == "number"
        return case((jsonb_number, cast(EventRow.properties[key].as_string(), Float)))

    def is_true(self, key: str) -> ColumnElement[bool]:
        """JSON true or 1, or the string "true" or "1" (any case): clients send booleans all these ways.

        SQLite's json_extract gives 1 for true, PostgreSQL's ->> gives 'true'; lower() makes text of both.
        """
        if self.sqlite:
            value = func.json_extract(EventRow.properties, f'$."{key}"')
        else:
            value = EventRow.properties[key].as_string()
        return func.lower(value).in_(("1", "true"))


def add_seconds(column: Any, seconds: float, dialect: Dialect) -> ColumnElement[Any]:
    """column + seconds, comparable with stored timestamps: millisecond UTC text (SQLite), timestamptz (PostgreSQL).

    SQLite compares the text; '…10:00:00.500' sorts before '…10:00:00.500100', so half-open windows stay exact to
    the millisecond.
    """
    if dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f", column, f"{float(seconds):+.3f} seconds")
    return column + func.make_interval(0, 0, 0, 0, 0, 0, float(seconds))


# --------------------------------------------------------------------------------------------------------------
# Temporary tables whose statements hit SQLAlchemy's compiled cache

_LIVE_TEMPORARY_TABLES = "fl_live_temporary_tables"


class _CreateTemporaryTableAs(Executable, ClauseElement):
    """CREATE TEMPORARY TABLE name AS <query>, its values bound parameters: a statement SQLAlchemy caches like any
    query. (Its CreateTableAs is DDL, compiled afresh on every call with each value inlined: for the dashboard's
    numbers at 100k events that compiling took half as long as SQLite took to run the statements.)"""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration style)
        ("name", InternalTraversal.dp_string),
        ("query", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, name: str, query: AnySelect) -> None:
        self.name = name
        self.query = query


@compiles(_CreateTemporaryTableAs)
def _create_temporary_table_as(element: _CreateTemporaryTableAs, compiler: Any, **kw: Any) -> str:
    name = compiler.preparer.quote(element.name)
    return f"CREATE TEMPORARY TABLE {name} AS {compiler.process(element.query, **kw)}"


def create_temporary_table(connection: Connection, query: AnySelect, prefix: str) -> TableClause:
    """The rows of `query` in a new temporary table, and a lightweight table construct to read it with.

    The name is the same whenever the same query shape is materialised on this connection (its cache key, and a
    counter for several alive at once), so the statements reading it are compiled once per process, not once per
    call. Same name ⇒ same query shape ⇒ same column types, which PostgreSQL's prepared statements rely on.
    Drop it with `drop_temporary_table`; a rollback discards it too (the name is then just not reused).
    """
    live: set[str] = connection.info.setdefault(_LIVE_TEMPORARY_TABLES, set())
    shape = hash(query._generate_cache_key().key) & 0xFFFF_FFFF_FFFF  # type: ignore[union-attr]
    name = next(n for i in itertools.count() if (n := f"{prefix}_{shape:012x}_{i}") not in live)
    connection.execute(_CreateTemporaryTableAs(name, query))
    live.add(name)
    return table(name, *(column(c.name, c.type) for c in query.selected_columns))


def drop_temporary_table(connection: Connection, temporary: TableClause) -> None:
    connection.exec_driver_sql(f"DROP TABLE {connection.dialect.identifier_preparer.quote(temporary.name)}")
    connection.info.get(_LIVE_TEMPORARY_TABLES, set()).discard(temporary.name)
