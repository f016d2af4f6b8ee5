"""Shared fixtures. `database` runs a test on SQLite and on PostgreSQL (each test in a schema of its own).

PostgreSQL runs when FEEDBACKLOOP_TEST_POSTGRES_URL is set (.ci/run sets it when the server answers); without it
the PostgreSQL half is skipped with the reason shown in the summary.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from store.database import Database

POSTGRES_URL_VARIABLE = "FEEDBACKLOOP_TEST_POSTGRES_URL"

# The CLI's rich consoles are built at import; a COLUMNS set then (pytest-xdist's workers inherit one) fixes their
# width for good, and the CLI tests could no longer widen them per call (CliRunner's env={"COLUMNS": …}).
os.environ.pop("COLUMNS", None)


def _postgres_base_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reads the developer's own .env or database: settings point into a temporary directory, and API
    keys are off (FEEDBACKLOOP_AUTH=off) unless a test turns them on."""
    home = tmp_path_factory.mktemp("settings")
    saved = {k: v for k, v in os.environ.items() if k.startswith("FEEDBACKLOOP_") or k == "OPENAI_API_KEY"}
    for key in saved:
        if key != POSTGRES_URL_VARIABLE:
            del os.environ[key]
    os.environ["FEEDBACKLOOP_DATABASE_URL"] = f"sqlite:///{home}/default.db"
    # The API tests call routes without keys; tests of access itself pass auth="on" (tests/access/).
    os.environ["FEEDBACKLOOP_AUTH"] = "off"
    from feedbackloop.settings import get_settings

    get_settings.cache_clear()
    yield
    os.environ.update(saved)
    get_settings.cache_clear()


def _postgres_schema_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/feedbackloop.db"
        return
    base_url = _postgres_base_url()
    if base_url is None:
        pytest.skip(
            f"PostgreSQL half skipped: set {POSTGRES_URL_VARIABLE} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(base_url, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()
