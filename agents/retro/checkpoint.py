"""Checkpointers on the configured database: SqliteSaver in the same SQLite file, PostgresSaver in the same
PostgreSQL database (and schema, through the URL's options). Thread id = retro id."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy.engine import make_url

SETUP_POLL_SECONDS = 0.05
_set_up: set[str] = set()  # URLs whose checkpoint tables this process has brought up to date


def _setup_once(connection: Any, saver: Any, database_url: str) -> None:
    """PostgresSaver.setup() under an advisory lock: two first runs on a fresh database would race on its
    migrations. The lock is polled, never waited for inside a statement: setup() builds indexes CONCURRENTLY,
    which waits for every open transaction, so a run blocked in pg_advisory_lock would deadlock with it."""
    key = int.from_bytes(hashlib.sha256(f"checkpoint-setup:{database_url}".encode()).digest()[:7], "big")
    while not connection.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,)).fetchone()["locked"]:
        time.sleep(SETUP_POLL_SECONDS)
    try:
        saver.setup()
    finally:
        connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
    _set_up.add(database_url)


def _libpq_url(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def checkpointer(database_url: str) -> Iterator[BaseCheckpointSaver[str]]:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        # setup() creates indexes CONCURRENTLY, which needs autocommit (REFERENCE.md §5).
        with Connection.connect(
            _libpq_url(database_url), autocommit=True, prepare_threshold=0, row_factory=dict_row
        ) as connection:
            saver = PostgresSaver(connection)
            if database_url not in _set_up:
                _setup_once(connection, saver, database_url)
            yield saver
        return
    database = url.database
    if not database or database == ":memory:":
        yield InMemorySaver()  # an in-memory store cannot outlive the process either
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    file_connection = sqlite3.connect(database, check_same_thread=False, timeout=30)
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver

        yield SqliteSaver(file_connection)
    finally:
        file_connection.close()
