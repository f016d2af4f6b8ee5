"""The API key repository on SQLite and PostgreSQL: only hashes are stored, lookups, listing, revocation, and
last_used_at written at most once per interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from store.database import Database
from store.models import ApiKeyRow
from store.repositories import api_keys

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_created_key_has_the_documented_shape_and_only_its_hash_is_stored(database: Database) -> None:
    with database.write() as connection:
        created = api_keys.create(connection, scope="ingest", name="web app", now=T0)
    key_id = created.record.id
    assert created.key.startswith(f"fbl_{key_id}_") and len(created.key) > len(f"fbl_{key_id}_") + 40
    assert api_keys.key_id_of(created.key) == key_id
    with database.read() as connection:
        row = connection.execute(select(ApiKeyRow.__table__)).mappings().one()
    secret = created.key.split("_", 2)[-1]  # fbl_<id>_<secret>; the secret itself may hold "_"
    stored_text = " ".join(str(value) for value in row.values())
    assert created.key not in stored_text and secret not in stored_text
    assert row["key_hash"] == api_keys.hash_key(created.key) and len(row["key_hash"]) == 64
    assert (row["id"], row["name"], row["scope"], row["created_at"]) == (key_id, "web app", "ingest", T0)


def test_find_by_key_knows_its_keys_only(database: Database) -> None:
    with database.write() as connection:
        first = api_keys.create(connection, scope="read", name="a", now=T0)
        second = api_keys.create(connection, scope="admin", name="b", now=T0)
    with database.read() as connection:
        found = api_keys.find_by_key(connection, first.key)
        assert found is not None and (found.id, found.scope, found.revoked) == (
            first.record.id,
            "read",
            False,
        )
        other = api_keys.find_by_key(connection, second.key)
        assert other is not None and other.scope == "admin"
        assert api_keys.find_by_key(connection, first.key + "x") is None
        assert api_keys.find_by_key(connection, "") is None
        assert api_keys.count_active(connection) == 2


def test_list_and_revoke(database: Database) -> None:
    with database.write() as connection:
        keep = api_keys.create(connection, scope="ingest", name="keep", now=T0)
        drop = api_keys.create(connection, scope="read", name="drop", now=T0 + timedelta(seconds=1))
        revoked = api_keys.revoke(connection, drop.record.id, T0 + timedelta(hours=1))
        again = api_keys.revoke(connection, drop.record.id, T0 + timedelta(hours=2))
        missing = api_keys.revoke(connection, "nosuchid", T0)
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
    assert again is not None and again.revoked_at == T0 + timedelta(hours=1)  # the first time stays
    assert missing is None
    with database.read() as connection:
        listed = api_keys.list_keys(connection)
        assert [(k.id, k.name, k.revoked) for k in listed] == [(keep.record.id, "keep", False),
                                                              (drop.record.id, "drop", True)]  # fmt: skip
        found = api_keys.find_by_key(connection, drop.key)
        assert found is not None and found.revoked  # known, and refused by the caller for that reason
        assert api_keys.count_active(connection) == 1
    assert "key_hash" not in listed[0].as_dict() and drop.key not in str(listed[1].as_dict())


def test_touch_writes_at_most_once_per_interval(database: Database) -> None:
    interval = timedelta(minutes=1)
    with database.write() as connection:
        key = api_keys.create(connection, scope="ingest", name="", now=T0)
        key_id = key.record.id
        assert api_keys.touch(connection, key_id, T0, min_interval=interval) is True
        assert api_keys.touch(connection, key_id, T0 + timedelta(seconds=30), min_interval=interval) is False
        assert api_keys.touch(connection, key_id, T0 + timedelta(seconds=61), min_interval=interval) is True
    with database.read() as connection:
        found = api_keys.find_by_key(connection, key.key)
    assert found is not None and found.last_used_at == T0 + timedelta(seconds=61)


@pytest.mark.parametrize(("scope", "name", "field"), [("write", "", "scope"), ("read", "n" * 129, "name")])
def test_create_refuses_bad_input_naming_the_field(
    database: Database, scope: str, name: str, field: str
) -> None:
    with database.write() as connection, pytest.raises(api_keys.ApiKeyError, match=f"^{field}: "):
        api_keys.create(connection, scope=scope, name=name, now=T0)
    with database.read() as connection:
        assert api_keys.list_keys(connection) == []


def test_scopes_match_the_api_layer() -> None:
    from feedbackloop.api.access import Scope

    assert set(api_keys.KEY_SCOPES) == {scope.value for scope in Scope}
