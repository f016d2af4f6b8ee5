"""Fixtures of the post-deploy hook tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from store.database import Database
from tests.hooks.support import hook_client


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    """The app with API keys on and both hook secrets set, on the test's database."""
    with hook_client(database, tmp_path) as test_client:
        yield test_client
