"""The session factory and a small handle bundling engine, sessions and schema upgrades."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from store.engine import make_engine
from store.migrate import upgrade_to_head


class Database:
    """One database: an engine, a session factory, and `write()` for short write transactions."""

    def __init__(self, url: str, *, upgrade: bool = True, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if upgrade:
            upgrade_to_head(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside one transaction that holds the write lock from its first statement.

        Commits on success, rolls back on any exception, so a failed batch leaves nothing behind.
        """
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                connection = connection.execution_options(sqlite_begin_immediate=True)
            with connection.begin():
                yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
