"""Fixtures of the retro door tests: the ticket backlog file in the test's directory, a database the runner's
process-wide handle is released from afterwards, and the synthetic product loaded into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feedbackloop import runtime
from feedbackloop.settings import get_settings
from store.database import Database
from tests.retro_doors.support import load_product


@pytest.fixture
def backlog_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The default ticket sink (JSON lines) writes into the test's directory."""
    path = tmp_path / "backlog.jsonl"
    monkeypatch.setenv("FEEDBACKLOOP_TICKETS_JSONL_PATH", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def retro_database(database: Database, backlog_file: Path) -> Iterator[Database]:
    """The test's database; afterwards the handle the runner opened on the same URL (feedbackloop.runtime keeps
    one per URL per process) is closed, so PostgreSQL connections do not pile up over the session."""
    yield database
    cached = runtime._databases.pop(database.url, None)
    if cached is not None:
        cached.dispose()


@pytest.fixture
def product(retro_database: Database) -> Database:
    """The synthetic product (500 users, 30 days) in the test's database."""
    load_product(retro_database)
    return retro_database
