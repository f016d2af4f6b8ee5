"""What the access tests share: an app with API keys on, and keys of each scope in its database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from store.database import Database
from store.repositories import api_keys


@dataclass(frozen=True)
class Keys:
    ingest: str
    read: str
    admin: str
    revoked: str

    def of(self, scope: str) -> str:
        return str(getattr(self, scope))


def create_key(database: Database, scope: str, name: str = "test") -> api_keys.CreatedKey:
    with database.write() as connection:
        return api_keys.create(connection, scope=scope, name=name, now=datetime.now(UTC))


def make_keys(database: Database) -> Keys:
    revoked = create_key(database, "admin", "revoked")
    with database.write() as connection:
        api_keys.revoke(connection, revoked.record.id, datetime.now(UTC))
    return Keys(
        ingest=create_key(database, "ingest").key,
        read=create_key(database, "read").key,
        admin=create_key(database, "admin").key,
        revoked=revoked.key,
    )


@contextmanager
def keyed_client(database: Database, **settings: Any) -> Iterator[TestClient]:
    """A client of an app with auth on (unless `settings` says otherwise) on `database`."""
    values: dict[str, Any] = {"database_url": database.url, "auth": "on", **settings}
    with TestClient(create_app(Settings(**values), database)) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
