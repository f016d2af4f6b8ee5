"""Engine factory: one place that knows how each dialect is tuned.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout so concurrent writers wait instead
of failing, and explicit BEGIN handling so a write transaction can take the write lock up front (BEGIN IMMEDIATE)
rather than failing with SQLITE_BUSY when it upgrades a read lock. PostgreSQL: psycopg 3 with a connection pool,
and custom plans for prepared statements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# PostgreSQL SQLSTATEs of a server that is going away or not yet back: admin/crash shutdown, cannot connect now,
# too many connections. Class 08 (connection exceptions) counts too.
_POSTGRES_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


class DatabaseURLError(ValueError):
    """The configured database URL cannot be used."""


def normalise_url(url: str) -> URL:
    """Parse a URL; plain postgresql:// URLs get the psycopg 3 driver we ship."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with a terse message
        raise DatabaseURLError(
            f"FEEDBACKLOOP_DATABASE_URL {url!r} is not a database URL "
            "(expected sqlite:///path/to.db or postgresql+psycopg://user@host:5432/db)"
        ) from exc
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseURLError(
            f"database backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql"
        )
    return parsed


def make_engine(url: str, **engine_options: Any) -> Engine:
    """Create a tuned engine for `url`; the directory of a SQLite file is created if missing."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, **engine_options)
    options: dict[str, Any] = {"pool_size": 5, "max_overflow": 10, "pool_pre_ping": True}
    options.update(engine_options)
    engine = create_engine(parsed, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares a statement run five times, and PostgreSQL may then keep one generic plan for it until
        # the table is analysed again. A plan made while `events` was small (a seq scan for the duplicate check
        # of each batch) stayed in use as it grew, on a server where autovacuum had not analysed it yet: HTTP
        # ingestion fell from 8,800 to 2,200 events/s within 100,000 events. Custom plans see the parameters
        # and the current table size every time (windows of different lengths want different plans too).
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: URL, **engine_options: Any) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    options.update(engine_options)
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes in WAL mode
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")  # reads of large windows skip read() copies
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_begin_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is away or busy for now — a condition that passes, so the caller should
    retry the same request later: SQLite's write lock still taken when the busy timeout ran out; PostgreSQL
    unreachable, restarting or out of connections (a lost connection, SQLSTATE 08xxx or 57P01–57P03, 53300); no
    pooled connection free within the pool's timeout. Anything else (a constraint, a missing table) is not."""
    if isinstance(error, PoolTimeoutError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    original = error.orig
    sqlite_name = getattr(original, "sqlite_errorname", None)
    if sqlite_name is not None:
        return str(sqlite_name).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    if type(original).__module__.split(".")[0] != "psycopg":
        return False
    state = getattr(original, "sqlstate", None)
    # psycopg reports a refused or dropped connection as OperationalError without a SQLSTATE.
    return state is None or state.startswith("08") or state in _POSTGRES_UNAVAILABLE_STATES
