"""HTTP ingestion on SQLite and PostgreSQL: the Segment and PostHog doors, limits, auth and the bad-input table."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from store.database import Database
from store.models import EventRow, UserRow
from tests.helpers import store_snapshot


def track(message_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Report Generated",
        "userId": "u1",
        "messageId": message_id,
        "timestamp": "2026-02-01T10:00:00+00:00",
        "properties": {"report_id": message_id},
        **extra,
    }


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database.url, max_batch_bytes=64 * 1024, max_item_bytes=4 * 1024, max_batch_items=50
    )
    with TestClient(create_app(settings, database)) as test_client:
        yield test_client


@pytest.fixture
def keyed_client(database: Database) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, write_keys="wk-live", auth="on")  # type: ignore[arg-type]
    with TestClient(create_app(settings, database)) as test_client:
        yield test_client


def stored_ids(database: Database) -> list[str]:
    with database.read() as connection:
        return list(connection.execute(select(EventRow.message_id).order_by(EventRow.message_id)).scalars())


def test_healthz_reports_database_and_schema(client: TestClient, database: Database) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == database.dialect and body["schema_current"] is True


def test_batch_stores_valid_items_and_reports_invalid_ones(client: TestClient, database: Database) -> None:
    response = client.post(
        "/v1/batch",
        json={
            "batch": [track("a"), {"type": "track", "userId": "u1", "messageId": "b"}, track("c"), track("a")]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: v for k, v in body.items() if k != "surveys"} == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": [
            {"index": 1, "messageId": "b", "reason": "event: a track call needs a non-empty event name"}
        ],
    }
    # One user's first report_generated: the time-to-value survey is queued for them and named in the answer.
    assert [(s["user_id"], s["survey_id"]) for s in body["surveys"]] == [("u1", "time_to_value")]
    assert stored_ids(database) == ["a", "c"]
    replay = client.post("/v1/batch", json={"batch": [track("a"), track("c")]})
    assert replay.json() == {"accepted": 0, "duplicates": 2, "rejected": [], "surveys": []}


def test_gzip_body_and_null_ids(client: TestClient, database: Database) -> None:
    body = {"batch": [track("g1", userId=None, anonymousId="anon-7")], "sentAt": "2026-02-01T10:00:05+00:00"}
    response = client.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    with database.read() as connection:
        row = connection.execute(select(EventRow.user_id, EventRow.anonymous_id, EventRow.name)).one()
    assert tuple(row) == (None, "anon-7", "report_generated")


def test_single_calls_use_the_path_as_type(client: TestClient, database: Database) -> None:
    assert (
        client.post(
            "/v1/identify", json={"userId": "u9", "traits": {"persona": "brand_sponsor"}, "messageId": "i9"}
        ).status_code
        == 200
    )
    assert (
        client.post("/v1/page", json={"anonymousId": "a1", "name": "Pricing", "messageId": "p1"}).status_code
        == 200
    )
    assert (
        client.post("/v1/alias", json={"userId": "u9", "previousId": "a1", "messageId": "al"}).status_code
        == 200
    )
    assert (
        client.post("/v1/group", json={"userId": "u9", "groupId": "g1", "messageId": "gr"}).status_code == 200
    )
    assert (
        client.post("/v1/screen", json={"userId": "u9", "name": "Home", "messageId": "sc"}).status_code == 200
    )
    assert client.post("/v1/track", json=track("t1")).status_code == 200
    with database.read() as connection:
        names = dict(connection.execute(select(EventRow.message_id, EventRow.name)).all())
        persona = connection.execute(select(UserRow.persona).where(UserRow.id == "u9")).scalar_one()
    assert names == {
        "i9": "identify",
        "p1": "Pricing",
        "al": "alias",
        "gr": "group",
        "sc": "Home",
        "t1": "report_generated",
    }
    assert persona == "brand_sponsor"


def test_posthog_batch_door(client: TestClient, database: Database) -> None:
    body = {
        "api_key": "phc",
        "batch": [
            {
                "event": "campaign_created",
                "distinct_id": "u5",
                "uuid": "ph-1",
                "properties": {"campaign_id": "c1"},
                "timestamp": "2026-02-01T10:00:00Z",
            }
        ],
    }
    assert client.post("/batch/", json=body).json()["accepted"] == 1
    assert stored_ids(database) == ["ph-1"]


BIG = "x" * 5000
BAD_INPUTS = [
    # (name, path, raw body, headers, status, code, message fragment)
    ("malformed json", "/v1/batch", b'{"batch": [', {}, 400, "invalid_json", "not valid JSON"),
    ("not utf-8", "/v1/batch", b"\xff\xfe", {}, 400, "invalid_json", "not valid JSON"),
    ("body is a list", "/v1/batch", b"[]", {}, 400, "invalid_batch", "'batch'"),
    ("batch not a list", "/v1/batch", b'{"batch": {}}', {}, 400, "invalid_batch", "'batch' must be a list"),
    (
        "too many items",
        "/v1/batch",
        json.dumps({"batch": [track(f"n{i}") for i in range(51)]}).encode(),
        {},
        400,
        "batch_too_large",
        "limit is 50",
    ),
    (
        "oversize item",
        "/v1/batch",
        json.dumps({"batch": [track("ok"), track("big", properties={"b": BIG})]}).encode(),
        {},
        400,
        "item_too_large",
        "batch[1]",
    ),
    (
        "oversize body",
        "/v1/batch",
        json.dumps({"batch": [track("x", properties={"b": BIG * 14})]}).encode(),
        {},
        413,
        "payload_too_large",
        "limit is 65,536 bytes",
    ),
    (
        "gzip bomb",
        "/v1/batch",
        gzip.compress(b'{"batch": [' + b" " * 200_000 + b"]}"),
        {"Content-Encoding": "gzip"},
        413,
        "payload_too_large",
        "after decompression",
    ),
    ("broken gzip", "/v1/batch", b"not gzip", {"Content-Encoding": "gzip"}, 400, "invalid_gzip", "gzip"),
    ("unknown encoding", "/v1/batch", b"{}", {"Content-Encoding": "br"}, 400, "unsupported_encoding", "br"),
    (
        "bad sentAt",
        "/v1/batch",
        json.dumps({"batch": [track("s")], "sentAt": "noon"}).encode(),
        {},
        400,
        "invalid_batch",
        "sentAt",
    ),
    (
        "single call without ids",
        "/v1/track",
        json.dumps({"event": "x"}).encode(),
        {},
        400,
        "invalid_event",
        "userId",
    ),
    (
        "single call naive time",
        "/v1/track",
        json.dumps(track("nt", timestamp="2026-01-01T00:00:00")).encode(),
        {},
        400,
        "invalid_event",
        "no UTC offset",
    ),
    (
        "single call wrong type",
        "/v1/identify",
        json.dumps(track("wt")).encode(),
        {},
        400,
        "invalid_event",
        "type",
    ),
    ("posthog not a batch", "/batch/", b'{"api_key": "k"}', {}, 400, "invalid_batch", "'batch'"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "headers", "status", "code", "fragment"),
    BAD_INPUTS,
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gets_its_status_and_message_and_changes_nothing(
    client: TestClient,
    database: Database,
    name: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    fragment: str,
) -> None:
    client.post("/v1/batch", json={"batch": [track("existing")]})
    before = store_snapshot(database)
    response = client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert fragment in response.json()["message"]
    assert store_snapshot(database) == before


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_write_keys_basic_auth_body_key_and_rejections(keyed_client: TestClient, database: Database) -> None:
    body = {"batch": [track("k1")]}
    assert keyed_client.post("/v1/batch", json=body, headers=_basic("wk-live")).status_code == 200
    assert (
        keyed_client.post(
            "/v1/batch", json={**body, "batch": [track("k2")], "writeKey": "wk-live"}
        ).status_code
        == 200
    )
    assert (
        keyed_client.post(
            "/batch/",
            json={"api_key": "wk-live", "batch": [{"event": "e", "distinct_id": "u", "uuid": "k3"}]},
        ).status_code
        == 200
    )
    before = store_snapshot(database)
    for headers, payload in (
        ({}, body),
        (_basic("wrong"), body),
        ({"Authorization": "Basic %%%"}, body),
        ({}, {**body, "writeKey": "nope"}),
    ):
        response = keyed_client.post(
            "/v1/batch", json={**payload, "batch": [track("denied")]}, headers=headers
        )
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    assert store_snapshot(database) == before
    assert stored_ids(database) == ["k1", "k2", "k3"]


def test_openapi_documents_the_ingest_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/v1/batch", "/v1/track", "/v1/identify", "/batch/", "/healthz"} <= set(spec["paths"])
    assert "413" in spec["paths"]["/v1/batch"]["post"]["responses"]


UNSTORABLE_ITEMS = [
    ("infinite number", '{"type":"track","event":"e","userId":"u","messageId":"x1","properties":{"v":1e400}}',
     "properties.v"),
    ("huge number", '{"type":"track","event":"e","userId":"u","messageId":"x2","properties":{"v":1e300}}',
     "properties.v"),
    ("NUL in a string", '{"type":"track","event":"e","userId":"u","messageId":"x3","properties":{"v":"a\\u0000b"}}',
     "NUL"),
    ("NUL in the user id", '{"type":"track","event":"e","userId":"u\\u0000","messageId":"x4"}', "userId"),
    ("lone surrogate", '{"type":"track","event":"e","userId":"u","messageId":"x5","properties":{"v":"\\ud800"}}',
     "surrogate"),
    ("deep nesting", '{"type":"track","event":"e","userId":"u","messageId":"x6","properties":'
     + '{"a":' * 40 + "1" + "}" * 40 + "}", "nested deeper"),
    ("year one", '{"type":"track","event":"e","userId":"u","messageId":"x7","timestamp":"0001-01-01T00:00:00+05:00"}',
     "timestamp"),
    ("long snake name", '{"type":"track","event":"' + "aB" * 127 + '","userId":"u","messageId":"x8"}', "event"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "item", "fragment"), UNSTORABLE_ITEMS, ids=[c[0] for c in UNSTORABLE_ITEMS])
def test_unstorable_values_are_rejected_per_item_and_the_rest_is_stored(
    client: TestClient, database: Database, name: str, item: str, fragment: str
) -> None:
    body = '{"batch": [' + json.dumps(track("fine")) + "," + item + "]}"
    response = client.post("/v1/batch", content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    (rejected,) = response.json()["rejected"]
    assert rejected["index"] == 1 and fragment in rejected["reason"]
    assert stored_ids(database) == ["fine"]


@pytest.mark.parametrize(
    "body",
    [b'{"batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"v": NaN}}]}',
     b'{"batch": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     b'{"batch": [], "n": ' + b"9" * 5000 + b"}"],
    ids=["NaN literal", "recursion", "5000-digit integer"],
)  # fmt: skip
def test_json_python_accepts_but_json_does_not_is_400(
    client: TestClient, database: Database, body: bytes
) -> None:
    before = store_snapshot(database)
    response = client.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"
    assert store_snapshot(database) == before


def test_replaying_an_old_identify_does_not_undo_a_later_one(client: TestClient, database: Database) -> None:
    first = {"type": "identify", "userId": "p1", "traits": {"persona": "agency", "address": {"city": "A"}},
             "messageId": "id-1", "timestamp": "2026-02-01T10:00:00Z"}  # fmt: skip
    second = {"type": "identify", "userId": "p1", "traits": {"persona": "brand_sponsor", "address": {"city": "B"},
              "plan": "pro"}, "messageId": "id-2", "timestamp": "2026-02-02T10:00:00Z"}  # fmt: skip
    for body in ({"batch": [first]}, {"batch": [second]}, {"batch": [first]}):
        client.post("/v1/batch", json=body)
    with database.read() as connection:
        persona, traits = connection.execute(select(UserRow.persona, UserRow.traits)).one()
    assert persona == "brand_sponsor"
    # Top-level merge on both databases: nested objects are replaced, not deep-merged.
    assert traits == {"persona": "brand_sponsor", "address": {"city": "B"}, "plan": "pro"}


def test_unreadable_basic_auth_is_ignored_when_ingestion_is_open(
    client: TestClient, database: Database
) -> None:
    response = client.post(
        "/v1/batch", json={"batch": [track("open-1")]}, headers={"Authorization": "Basic %%%"}
    )
    assert response.status_code == 200 and stored_ids(database) == ["open-1"]
