"""Event and user writes, tuned for bulk: one statement per chunk, dedupe by the unique message_id.

Inserts are `ON CONFLICT (message_id) DO NOTHING` on both dialects, so a replayed batch (client retry, re-run
import) inserts nothing and concurrent writers of the same message never fail. The number of rows actually
inserted comes from the driver's rowcount, which both sqlite3 and psycopg sum over an executemany.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Table, and_, case, func, select

from store.models import UNASSIGNED_PERSONA, EventRow, UserRow
from store.sql import insert_for

EVENT_COLUMNS = (
    "message_id",
    "type",
    "name",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "properties",
    "context",
)


class EventRecord(Protocol):
    """What insert_events reads from each event (tools.events.model.CanonicalEvent satisfies it as it is, so
    the bulk path writes without copying). Timestamps are timezone-aware; JSON fields are plain dicts."""

    @property
    def message_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def anonymous_id(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def properties(self) -> dict[str, Any]: ...
    @property
    def context(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class UserSighting:
    """What one batch says about a user: when it was seen, its complete traits, and its persona when the batch
    determines one (None = keep the stored persona)."""

    user_id: str
    first_seen: datetime
    last_seen: datetime
    persona: str | None = None
    traits: dict[str, Any] | None = None
    signed_up_at: datetime | None = None  # the batch's earliest user_signed_up of the user
    first_report_at: datetime | None = None  # the batch's earliest report_generated of the user
    subscribed_at: datetime | None = None  # the batch's earliest subscription_started of the user
    persona_changed: bool = False  # a stored user gets another persona: the rows that carry it must follow


@dataclass(frozen=True, slots=True)
class StoredUser:
    traits: dict[str, Any]
    persona: str


# One encoder for every row: json.dumps builds a new JSONEncoder per call when given options.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
_json = _JSON_ENCODER.encode


def _sqlite_time(value: datetime) -> str:
    # The exact text SQLAlchemy's SQLite DateTime type writes, so both write paths sort and compare alike.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def insert_events(connection: Connection, records: Sequence[EventRecord]) -> int:
    """Insert records, skipping message ids already stored; returns how many rows were inserted.

    The caller must also call activity_rollups.mark_stale_days for the records, as the last statement of its
    transaction (it locks the day markers; the later, the shorter).
    """
    if not records:
        return 0
    records = sorted(records, key=lambda r: r.message_id)  # one index lock order for concurrent writers
    if connection.dialect.name == "sqlite":
        return _insert_events_sqlite(connection, records)
    return _insert_events_postgresql(connection, records)


def _insert_events_sqlite(connection: Connection, records: Sequence[EventRecord]) -> int:
    # Straight to the DBAPI executemany: SQLAlchemy's per-row type processing would halve the throughput.
    rows = [
        (
            r.message_id,
            r.type,
            r.name,
            r.user_id,
            r.anonymous_id,
            _sqlite_time(r.timestamp),
            _sqlite_time(r.received_at),
            _json(r.properties),
            _json(r.context),
        )
        for r in records
    ]
    statement = (
        # bandit B608: column names are constants, values are bound (?)
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) "  # nosec B608
        "ON CONFLICT (message_id) DO NOTHING"
    )
    result = connection.exec_driver_sql(statement, rows)
    return max(result.rowcount, 0)


def _insert_events_postgresql(connection: Connection, records: Sequence[EventRecord]) -> int:
    # COPY into a temporary staging table, then one INSERT … SELECT … ON CONFLICT: the fastest safe path.
    # The raw psycopg connection: COPY is a psycopg feature, not a DBAPI one.
    dbapi: Any = connection.connection.dbapi_connection
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS events_staging "
        "(message_id text, type text, name text, user_id text, anonymous_id text, "
        "timestamp timestamptz, received_at timestamptz, properties jsonb, context jsonb) ON COMMIT DELETE ROWS"
    )
    copy_statement = f"COPY events_staging ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
    with dbapi.cursor() as cursor, cursor.copy(copy_statement) as copy:
        for r in records:
            copy.write_row(
                (
                    r.message_id,
                    r.type,
                    r.name,
                    r.user_id,
                    r.anonymous_id,
                    r.timestamp,
                    r.received_at,
                    _json(r.properties),
                    _json(r.context),
                )
            )
    columns = ", ".join(EVENT_COLUMNS)
    result = connection.exec_driver_sql(
        # bandit B608: constant column names, no values
        f"INSERT INTO events ({columns}) SELECT {columns} FROM events_staging ORDER BY message_id "  # nosec B608
        "ON CONFLICT (message_id) DO NOTHING"
    )
    connection.exec_driver_sql("DELETE FROM events_staging")
    return max(result.rowcount, 0)


def upsert_users(connection: Connection, sightings: Sequence[UserSighting]) -> None:
    """Create users or widen their first/last seen; set persona and traits where the sighting carries them.

    `traits` must be the complete traits to store (the caller merges them with stored_traits()); a sighting
    whose persona is None keeps the stored persona. One statement over rows sorted by id, after stored_traits()
    locked the existing rows in the same order: concurrent batches on PostgreSQL take locks in one order and
    cannot deadlock.
    """
    if not sightings:
        return
    table = UserRow.__table__
    assert isinstance(table, Table)
    statement = insert_for(connection, table)
    excluded = statement.excluded
    updates: dict[str, Any] = {
        "first_seen": case((excluded.first_seen < table.c.first_seen, excluded.first_seen), else_=table.c.first_seen),
        "last_seen": case((excluded.last_seen > table.c.last_seen, excluded.last_seen), else_=table.c.last_seen),
        # A sighting that does not determine a persona keeps the one already known.
        "persona": case((excluded.persona == UNASSIGNED_PERSONA, table.c.persona), else_=excluded.persona),
        "traits": excluded.traits,
        "signed_up_at": _earliest(excluded.signed_up_at, table.c.signed_up_at),
        "first_report_at": _earliest(excluded.first_report_at, table.c.first_report_at),
        "subscribed_at": _earliest(excluded.subscribed_at, table.c.subscribed_at),
    }  # fmt: skip
    connection.execute(
        statement.on_conflict_do_update(index_elements=["id"], set_=updates),
        [
            {
                "id": s.user_id,
                "persona": s.persona or UNASSIGNED_PERSONA,
                "traits": s.traits or {},
                "first_seen": s.first_seen,
                "last_seen": s.last_seen,
                "signed_up_at": s.signed_up_at,
                "first_report_at": s.first_report_at,
                "subscribed_at": s.subscribed_at,
            }
            for s in sorted(sightings, key=lambda s: s.user_id)
        ],
    )


def _earliest(batch: Any, stored: Any) -> Any:
    """The earlier of two optional instants (NULL means none yet): milestones only ever move earlier."""
    return case(
        (stored.is_(None), batch),
        (and_(batch.is_not(None), batch < stored), batch),
        else_=stored,
    )


def stored_users(connection: Connection, user_ids: Sequence[str]) -> dict[str, StoredUser]:
    """Traits and persona of these users as stored, locked until the transaction ends (PostgreSQL: FOR UPDATE,
    in id order; SQLite: the write transaction already holds the database lock)."""
    if not user_ids:
        return {}
    query = (
        select(UserRow.id, UserRow.traits, UserRow.persona)
        .where(UserRow.id.in_(sorted(user_ids)))
        .order_by(UserRow.id)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return {
        user_id: StoredUser(dict(traits or {}), persona or UNASSIGNED_PERSONA)
        for user_id, traits, persona in connection.execute(query)
    }


def stored_traits(connection: Connection, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Traits of these users as stored, locked like stored_users."""
    return {user_id: user.traits for user_id, user in stored_users(connection, user_ids).items()}


def existing_message_ids(connection: Connection, message_ids: Sequence[str]) -> set[str]:
    """Which of these message ids are already stored (one indexed lookup per 5,000 ids)."""
    found: set[str] = set()
    for start in range(0, len(message_ids), 5_000):
        part = message_ids[start : start + 5_000]
        found.update(
            connection.execute(select(EventRow.message_id).where(EventRow.message_id.in_(part))).scalars()
        )
    return found


def count_events(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(EventRow)).scalar_one())


def stored_message_ids(connection: Connection) -> set[str]:
    return set(connection.execute(select(EventRow.message_id)).scalars())
