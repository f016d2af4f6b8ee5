"""Checkpointers on the configured database: SqliteSaver in the same SQLite file, PostgresSaver in the same
PostgreSQL database (and schema, through the URL's options). Thread id = retro id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy.engine import make_url


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
            saver.setup()
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
