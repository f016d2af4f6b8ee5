"""The key check over HTTP: Segment and PostHog key placements map to ingest, 401 vs 403, revoked keys, the hint
when no key exists, auth=off, CORS for browser SDKs, last-use bookkeeping, and keys never reaching the logs."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from store.database import Database
from store.repositories import api_keys
from tests.access.support import bearer, create_key, keyed_client, make_keys


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _batch(message_id: str, **extra: Any) -> dict[str, Any]:
    event = {"type": "track", "event": "report_generated", "userId": "ana", "messageId": message_id}
    return {"batch": [event], **extra}


def _posthog(uuid: str, **extra: Any) -> dict[str, Any]:
    return {"batch": [{"event": "report_generated", "distinct_id": "ana", "uuid": uuid}], **extra}


def test_segment_and_posthog_key_placements_map_to_ingest(database: Database) -> None:
    keys = make_keys(database)
    with keyed_client(database, write_keys=[SecretStr("wk-legacy")]) as client:
        accepted = [
            client.post("/v1/batch", json=_batch("m1"), headers=_basic(keys.ingest)),
            client.post("/v1/batch", json=_batch("m2", writeKey=keys.ingest)),
            client.post("/v1/track", json={**_batch("m3")["batch"][0], "writeKey": keys.ingest}),
            client.post("/batch/", json=_posthog("m4", api_key=keys.ingest)),
            client.post("/v1/batch", json=_batch("m5"), headers=bearer(keys.ingest)),
            client.post(
                "/v1/batch", json=_batch("m6"), headers=_basic("wk-legacy")
            ),  # FEEDBACKLOOP_WRITE_KEYS
            client.post("/v1/batch", json=_batch("m7", writeKey="wk-legacy")),
            client.post(
                "/v1/batch", json=_batch("m8"), headers=bearer(keys.admin)
            ),  # admin may do everything
        ]
        assert [(r.status_code, r.json()["accepted"]) for r in accepted] == [(200, 1)] * len(accepted)
        read_in_body = client.post("/v1/batch", json=_batch("r1", writeKey=keys.read))
        assert read_in_body.status_code == 403 and "'ingest'" in read_in_body.json()["message"]
        # The header wins over the body: a read key in the header is refused even with an ingest key in the body.
        header_wins = client.post(
            "/v1/batch", json=_batch("r2", writeKey=keys.ingest), headers=bearer(keys.read)
        )
        assert header_wins.status_code == 403
        for headers, body in (
            ({}, _batch("r3")),
            ({}, _batch("r4", writeKey="fbl_00000000_not-a-key")),
            ({"Authorization": "Basic %%%"}, _batch("r5")),
            ({"Authorization": "Token abc"}, _batch("r6")),
            (_basic(keys.revoked), _batch("r7")),
        ):
            refused = client.post("/v1/batch", json=body, headers=headers)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized", headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
        assert client.post("/v1/batch", content=b"not json").status_code == 401  # no key: nothing is parsed
        assert client.post("/v1/batch", content=b"not json", headers=bearer(keys.ingest)).status_code == 400


def test_ingest_keys_cannot_read_or_administer_and_read_keys_cannot_ingest(database: Database) -> None:
    keys = make_keys(database)
    with keyed_client(database) as client:
        assert client.get("/v1/kpis", headers=bearer(keys.ingest)).status_code == 403
        assert client.get("/dashboard", headers=bearer(keys.ingest)).status_code == 403
        created = client.post("/v1/silences", json={}, headers=bearer(keys.read))
        assert created.status_code == 403
        assert created.json() == {
            "code": "forbidden",
            "message": f"this route needs an API key of scope 'admin'; key {api_keys.key_id_of(keys.read)} has "
            "scope 'read'",
        }
        assert created.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="admin"'
        assert client.post("/v1/batch", json=_batch("x"), headers=bearer(keys.read)).status_code == 403
        assert client.get("/v1/kpis", headers=bearer(keys.read)).status_code == 200
        assert client.get("/v1/kpis", headers=bearer(keys.admin)).status_code == 200


def test_the_401_says_how_to_create_the_first_key(database: Database) -> None:
    with keyed_client(database) as client:
        first = client.get("/v1/kpis").json()["message"]
        assert "`feedbackloop keys create --scope read`" in first
        assert "`feedbackloop keys create --scope ingest`" in client.post("/v1/batch", json=_batch("a")).text
        create_key(database, "read")
        assert "keys create" not in client.get("/v1/kpis").json()["message"]
    with keyed_client(database, write_keys=[SecretStr("wk")]) as client:
        assert "keys create" not in client.post("/v1/batch", json=_batch("b")).json()["message"]


def test_a_revoked_key_is_refused_from_the_next_request(database: Database) -> None:
    created = create_key(database, "read")
    with keyed_client(database) as client:
        assert client.get("/v1/kpis", headers=bearer(created.key)).status_code == 200
        with database.write() as connection:
            api_keys.revoke(connection, created.record.id, created.record.created_at)
        refused = client.get("/v1/kpis", headers=bearer(created.key))
        assert refused.status_code == 401
        assert refused.json()["message"] == f"the API key {created.record.id} was revoked"


def test_auth_off_opens_key_routes_and_says_so_loudly(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), keyed_client(database, auth="off") as client:
        assert client.get("/v1/kpis").status_code == 200
        assert client.post("/v1/batch", json=_batch("open")).json()["accepted"] == 1
        assert client.post("/v1/silences", json={}).status_code not in (401, 403)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("FEEDBACKLOOP_AUTH=off" in message and "OPEN WITHOUT A KEY" in message for message in warnings)
    caplog.clear()
    with caplog.at_level(logging.WARNING), keyed_client(database):
        pass
    assert not any("OPEN WITHOUT A KEY" in r.getMessage() for r in caplog.records)
    startup = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no API key exists yet" in m and "keys create --scope" in m for m in startup)


def test_cors_preflight_for_browser_sdks(database: Database) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with keyed_client(database, cors_origins=["https://app.example.com"]) as client:
        allowed = client.options("/v1/batch", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert "access-control-allow-credentials" not in allowed.headers
        other = client.options("/v1/batch", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        refused = client.post("/v1/batch", json=_batch("c"), headers={"Origin": "https://app.example.com"})
        assert refused.status_code == 401  # CORS lets the browser in; the key still decides
        assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    with keyed_client(database) as client:
        assert "access-control-allow-origin" not in client.options("/v1/batch", headers=preflight).headers


def test_last_use_is_recorded_without_a_write_per_request(database: Database) -> None:
    created = create_key(database, "ingest")
    with keyed_client(database) as client:
        client.post("/v1/batch", json=_batch("u1"), headers=bearer(created.key))
        with database.read() as connection:
            first = api_keys.find_by_key(connection, created.key)
        assert first is not None and first.last_used_at is not None
        client.post("/v1/batch", json=_batch("u2"), headers=bearer(created.key))
        with database.read() as connection:
            second = api_keys.find_by_key(connection, created.key)
        assert second is not None and second.last_used_at == first.last_used_at  # within the minute: no write


def test_keys_never_reach_the_logs_or_answers(database: Database, caplog: pytest.LogCaptureFixture) -> None:
    keys = make_keys(database)
    unknown = "fbl_deadbeef_" + "s" * 43
    with caplog.at_level(logging.DEBUG), keyed_client(database) as client:
        answers = [
            client.get("/v1/kpis", headers=bearer(keys.ingest)),
            client.get("/v1/kpis", headers=bearer(keys.revoked)),
            client.get("/v1/kpis", headers=bearer(unknown)),
            client.post("/v1/batch", json=_batch("l1", writeKey=keys.read)),
        ]
    everything = caplog.text + " ".join(answer.text for answer in answers)
    for key in (keys.ingest, keys.revoked, keys.read, unknown):
        # the secret part whole: fbl_<id>_<secret>, and the secret itself may hold "_"
        assert key not in everything and key.split("_", 2)[-1] not in everything
    assert str(api_keys.key_id_of(keys.ingest)) in caplog.text  # the public id is what identifies a key


def test_openapi_names_the_security_of_each_operation(database: Database) -> None:
    with keyed_client(database) as client:
        spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": "`feedbackloop keys create`",
    }  # fmt: skip
    assert spec["paths"]["/v1/batch"]["post"]["security"] == [{"ApiKey": []}, {"WriteKey": []}]
    assert spec["paths"]["/v1/kpis"]["get"]["security"] == [{"ApiKey": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert spec["paths"]["/v1/kpis"]["get"]["x-feedbackloop-access"] == "read key"


def test_a_browser_opening_the_dashboard_is_asked_for_the_key_as_basic_credentials(
    database: Database,
) -> None:
    """A browser cannot send a Bearer header; challenged with Basic, it asks its user, who enters a read key."""
    keys = make_keys(database)
    page = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    with keyed_client(database) as client:
        asked = client.get("/dashboard?days=7", headers=page)
        assert asked.status_code == 401
        assert asked.headers["www-authenticate"].startswith('Basic realm="feedbackloop')
        assert "enter the key as the user name" in asked.json()["message"]
        wrong = client.get("/dashboard?days=7", headers={**page, **_basic("fbl_00000000_not-a-key")})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic ")
        shown = client.get("/dashboard?days=7", headers={**page, **_basic(keys.read)})
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
        ingest_only = client.get("/dashboard?days=7", headers={**page, **_basic(keys.ingest)})
        assert ingest_only.status_code == 403
        api = client.get("/v1/kpis?days=7")  # an API client keeps the Bearer challenge
        assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Bearer ")


def test_cached_basic_credentials_cannot_be_used_by_another_sites_page(database: Database) -> None:
    """CSRF: a browser that was given a key for the dashboard attaches it to any request to this host, so a
    state-changing request another site's page made must not count as that user's."""
    keys = make_keys(database)
    chat = {"text": "help", "user": "ana", "channel": "#growth"}
    basic = _basic(keys.admin)
    with keyed_client(database, cors_origins=["https://app.example.com"]) as client:
        cross_site = client.post("/v1/chat", json=chat, headers={**basic, "Origin": "https://evil.example",
                                                                  "Sec-Fetch-Site": "cross-site"})  # fmt: skip
        assert cross_site.status_code == 403 and "another site" in cross_site.json()["message"]
        fetch_metadata_only = client.post(
            "/v1/chat", json=chat, headers={**basic, "Sec-Fetch-Site": "cross-site"}
        )
        assert fetch_metadata_only.status_code == 403
        # a listed browser SDK's site, a server-side client (no Origin), and Bearer from anywhere still work
        sdk_headers = {**_basic(keys.ingest), "Origin": "https://app.example.com"}
        listed = client.post("/v1/batch", json=_batch("c1"), headers=sdk_headers)
        assert listed.status_code == 200, listed.text
        assert client.post("/v1/chat", json=chat, headers=basic).status_code == 200
        bearer_cross = client.post(
            "/v1/chat", json=chat, headers={**bearer(keys.admin), "Origin": "https://evil.example"}
        )
        assert bearer_cross.status_code == 200
        reading = client.get("/v1/kpis?days=7", headers={**_basic(keys.read), "Sec-Fetch-Site": "cross-site"})
        assert reading.status_code == 200  # reads change nothing (and CORS keeps their answers from the page)
