"""Engine factory: one place that knows how each dialect is tuned.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout so concurrent writers wait instead
of failing, and explicit BEGIN handling so a write transaction can take the write lock up front (BEGIN IMMEDIATE)
rather than failing with SQLITE_BUSY when it upgrades a read lock. PostgreSQL: psycopg 3 with a connection pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


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
    return create_engine(parsed, **options)


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
