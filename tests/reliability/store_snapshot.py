"""Row counts and a checksum of every table of a database, to prove that a refused input changed nothing.

Every table the database holds is covered (ours, Alembic's, LangGraph's checkpoints), found by inspection, not
from our models, so a table added later is covered without editing this file. Rows are dumped as text and sorted
in Python, so the checksum does not depend on a dialect's ORDER BY for JSON or binary columns: the same content
gives the same checksum on SQLite and on PostgreSQL runs alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, MetaData, Table, inspect, select

from store.database import Database

# Columns that legitimately change on a refused request: an API key's last use is recorded on any request that
# authenticates (at most once a minute), whatever the request asks for.
VOLATILE_COLUMNS: Mapping[str, frozenset[str]] = {"api_keys": frozenset({"last_used_at"})}


@dataclass(frozen=True, slots=True)
class TableState:
    rows: int
    checksum: str


def store_snapshot(database: Database, *, exclude: Iterable[str] = ()) -> dict[str, TableState]:
    """Every table's row count and a SHA-256 over its sorted rows (volatile columns left out)."""
    skipped = set(exclude)
    snapshot: dict[str, TableState] = {}
    with database.read() as connection:
        names = tuple(sorted(inspect(connection).get_table_names()))
        tables = _reflected(database, names, connection)
        for name in names:
            if name in skipped:
                continue
            table = tables[name]
            volatile = VOLATILE_COLUMNS.get(name, frozenset())
            columns = [column for column in table.columns if column.name not in volatile]
            dumped = sorted(
                repr(tuple(str(value) for value in row)) for row in connection.execute(select(*columns))
            )
            digest = hashlib.sha256("\n".join(dumped).encode()).hexdigest()
            snapshot[name] = TableState(len(dumped), digest)
    return snapshot


def _reflected(database: Database, names: tuple[str, ...], connection: Connection) -> dict[str, Table]:
    """The tables' columns, reflected once per database and set of tables (reflection is the slow part)."""
    key = (database.url, names)
    if key not in _REFLECTED:
        metadata = MetaData()
        _REFLECTED[key] = {name: Table(name, metadata, autoload_with=connection) for name in names}
    return _REFLECTED[key]


_REFLECTED: dict[tuple[str, tuple[str, ...]], dict[str, Table]] = {}


def changed_tables(before: Mapping[str, TableState], after: Mapping[str, TableState]) -> dict[str, str]:
    """What differs between two snapshots, table → `rows a→b` or `checksum`, for assertion messages."""
    changes: dict[str, str] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None or new is None:
            changes[name] = "table appeared" if old is None else "table vanished"
        elif old.rows != new.rows:
            changes[name] = f"rows {old.rows}→{new.rows}"
        else:
            changes[name] = "checksum"
    return changes
