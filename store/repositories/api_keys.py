"""API keys: create (the key is returned once, only its SHA-256 is kept), find by key, list, revoke, touch.

A key reads `fbl_<id>_<secret>`: `id` is a short public prefix (the primary key, shown in listings and logs), the
secret is 256 random bits. Keys are that random, so a plain SHA-256 is as strong as a slow password hash here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, func, insert, or_, select, update

from store.models import ApiKeyRow

KEY_PREFIX = "fbl_"
KEY_SCOPES = ("ingest", "read", "admin")
MAX_NAME_LENGTH = 128


class ApiKeyError(ValueError):
    """A key cannot be created as asked (unknown scope, name too long)."""


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is stored about a key: never the key itself."""

    id: str
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, str | bool | None]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked": self.revoked,
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key and its record; `key` exists only here, it cannot be shown again."""

    key: str
    record: ApiKeyRecord


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id inside a presented key (for logs), or None when it is not shaped like one of ours."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, separator, _secret = key[len(KEY_PREFIX) :].partition("_")
    return key_id if separator and key_id.isalnum() and len(key_id) <= 32 else None


def create(connection: Connection, *, scope: str, name: str, now: datetime) -> CreatedKey:
    if scope not in KEY_SCOPES:
        raise ApiKeyError(f"scope: {scope!r} is not one of {', '.join(KEY_SCOPES)}")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"name: {len(name)} characters; at most {MAX_NAME_LENGTH}")
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    connection.execute(
        insert(ApiKeyRow).values(
            id=key_id, name=name, scope=scope, key_hash=hash_key(key), created_at=now,
            last_used_at=None, revoked_at=None,
        )
    )  # fmt: skip
    record = ApiKeyRecord(key_id, name, scope, now, None, None)
    return CreatedKey(key, record)


def find_by_key(connection: Connection, key: str) -> ApiKeyRecord | None:
    """The record of `key` (revoked ones too: the caller says why it refuses), or None when unknown."""
    presented_hash = hash_key(key)
    row = (
        connection.execute(select(ApiKeyRow.__table__).where(ApiKeyRow.key_hash == presented_hash))
        .mappings()
        .one_or_none()
    )
    # The index found the row; comparing the hashes again in constant time costs nothing and leaves no doubt.
    if row is None or not hmac.compare_digest(row["key_hash"], presented_hash):
        return None
    return _record(row)


def list_keys(connection: Connection) -> list[ApiKeyRecord]:
    rows = connection.execute(select(ApiKeyRow.__table__).order_by(ApiKeyRow.created_at, ApiKeyRow.id))
    return [_record(row) for row in rows.mappings()]


def count_active(connection: Connection) -> int:
    statement = select(func.count()).select_from(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None))
    return int(connection.execute(statement).scalar_one())


def revoke(connection: Connection, key_id: str, now: datetime) -> ApiKeyRecord | None:
    """Revoke a key (a second revoke keeps the first time); None when no key has that id."""
    connection.execute(
        update(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None)).values(revoked_at=now)
    )
    row = (
        connection.execute(select(ApiKeyRow.__table__).where(ApiKeyRow.id == key_id)).mappings().one_or_none()
    )
    return _record(row) if row is not None else None


def touch(connection: Connection, key_id: str, now: datetime, *, min_interval: timedelta) -> bool:
    """Record a use, unless one was recorded less than `min_interval` ago; True when a row changed."""
    result = connection.execute(
        update(ApiKeyRow)
        .where(
            ApiKeyRow.id == key_id,
            or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < now - min_interval),
        )
        .values(last_used_at=now)
    )
    return bool(result.rowcount)


def _record(row: RowMapping) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
