"""POST /v1/hooks/deploy on SQLite and PostgreSQL: a CI-style call (Bearer key of scope ingest, or a Standard
Webhooks signature) records the deployment event, runs the escalation check and schedules the deployment retro
after the bake window; immediate runs it; a duplicate delivery does nothing; bad input is a 400 naming the field
and writes nothing; signatures and keys are enforced."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.database import Database
from tests.hooks.support import (
    DEPLOY_SECRET,
    bearer,
    count,
    create_key,
    deployment_events,
    hook_client,
    retro_rows,
    signed,
)

HOOK = "/v1/hooks/deploy"


def nothing_written(database: Database) -> bool:
    return (count(database, "events"), count(database, "retros"), count(database, "hook_deliveries")) == (
        0,
        0,
        0,
    )


def test_a_ci_call_with_an_ingest_key_records_checks_and_schedules_the_retro(
    client: TestClient, database: Database
) -> None:
    deployed_at = (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
    body = {
        "service": "sponsor-api", "version": "v2.3.0", "environment": "production", "commit": "a10867b",
        "deployed_at": deployed_at.isoformat(), "url": "https://ci.example.com/runs/99",
    }  # fmt: skip
    response = client.post(HOOK, json=body, headers=bearer(create_key(database, "ingest")))
    assert response.status_code == 201, response.text
    outcome = response.json()
    assert outcome["duplicate"] is False
    assert outcome["deployment"] | {"stored": True} == {
        **body, "deployed_at": deployed_at.isoformat(), "event_id": outcome["deployment"]["event_id"], "stored": True
    }  # fmt: skip

    [event] = deployment_events(database)
    assert event["message_id"] == outcome["deployment"]["event_id"]
    assert (event["anonymous_id"], event["user_id"], event["timestamp"]) == ("system", None, deployed_at)
    assert event["properties"] | {} == {
        "version": "v2.3.0", "service": "sponsor-api", "environment": "production", "commit": "a10867b",
        "url": "https://ci.example.com/runs/99", "hook": "deploy", "delivery_id": outcome["delivery"]["id"],
    }  # fmt: skip

    check = outcome["escalation_check"]
    assert check["status"] == "ran" and check["evaluated"] == 0  # no users yet: every rule lacks data
    assert count(database, "escalation_rules") == 5  # the default rules were in place for the check

    retro = outcome["retro"]
    assert retro["status"] == "scheduled" and retro["bake_hours"] == 24
    assert datetime.fromisoformat(retro["run_after"]) == deployed_at + timedelta(hours=24)
    [row] = retro_rows(database)
    assert (row["id"], row["kind"], row["version"], row["status"]) == (
        retro["id"],
        "deployment",
        "v2.3.0",
        "scheduled",
    )
    assert row["run_after"] == deployed_at + timedelta(hours=24)
    assert (row["window_start"], row["window_end"]) == (deployed_at, deployed_at + timedelta(hours=24))
    assert row["request"]["deployed_at"] == deployed_at.isoformat()

    shown = client.get(retro["links"]["self"], headers=bearer(create_key(database, "read")))
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "scheduled"
    assert datetime.fromisoformat(shown.json()["run_after"]) == deployed_at + timedelta(hours=24)


def test_the_same_deployment_twice_is_one_delivery(client: TestClient, database: Database) -> None:
    key = bearer(create_key(database, "ingest"))
    body = {"service": "sponsor-api", "version": "v2.3.0", "commit": "a10867b"}
    first = client.post(HOOK, json=body, headers=key)
    again = client.post(HOOK, json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["retro"]["id"] == first.json()["retro"]["id"]
    assert again.json()["deployment"] == first.json()["deployment"]
    assert (len(deployment_events(database)), len(retro_rows(database))) == (1, 1)

    other_commit = client.post(HOOK, json={**body, "commit": "b20977c"}, headers=key)
    assert other_commit.status_code == 201 and other_commit.json()["duplicate"] is False
    assert (len(deployment_events(database)), len(retro_rows(database))) == (2, 2)


def test_a_signed_call_is_accepted_without_a_key_and_its_webhook_id_is_the_replay_key(
    client: TestClient, database: Database
) -> None:
    raw, headers = signed({"service": "sponsor-api", "version": "v2.3.1"}, message_id="msg_2Lh9")
    first = client.post(HOOK, content=raw, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["delivery"] == {"source": "deploy", "id": "msg_2Lh9"}
    replay = client.post(HOOK, content=raw, headers=headers)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert (len(deployment_events(database)), len(retro_rows(database))) == (1, 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("wrong_secret", "does not match"),
        ("stale", "minutes from the server's clock"),
        ("tampered", "does not match"),
        ("missing_id", "missing webhook-id"),
    ],
)
def test_a_bad_signature_is_401_and_writes_nothing(
    client: TestClient, database: Database, change: str, reason: str
) -> None:
    body = {"service": "sponsor-api", "version": "v2.3.1"}
    other_secret = "whsec_" + "b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmctZW5vdWdo"
    raw, headers = signed(
        body,
        secret=other_secret if change == "wrong_secret" else DEPLOY_SECRET,
        at=datetime.now(UTC) - timedelta(minutes=6) if change == "stale" else None,
    )
    if change == "tampered":
        raw = raw.replace(b"v2.3.1", b"v6.6.6")
    if change == "missing_id":
        del headers["webhook-id"]
    response = client.post(HOOK, content=raw, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_signature" and reason in response.json()["message"]
    assert nothing_written(database)


def test_no_key_and_no_signature_is_401_and_a_read_key_is_403(client: TestClient, database: Database) -> None:
    body = {"service": "sponsor-api", "version": "v2.3.1"}
    assert client.post(HOOK, json=body).status_code == 401
    refused = client.post(HOOK, json=body, headers=bearer(create_key(database, "read")))
    assert refused.status_code == 403 and "ingest" in refused.json()["message"]
    assert nothing_written(database)


def test_a_signed_call_while_the_secret_is_unset_is_503_naming_the_setting(
    database: Database, tmp_path: Path
) -> None:
    raw, headers = signed({"service": "sponsor-api", "version": "v2.3.1"})
    with hook_client(database, tmp_path, deploy_hook_secret=None) as client:
        response = client.post(HOOK, content=raw, headers=headers)
        assert response.status_code == 503
        assert "FEEDBACKLOOP_DEPLOY_HOOK_SECRET" in response.json()["message"]
        # a key still works without the secret
        keyed = client.post(HOOK, content=raw, headers=bearer(create_key(database, "ingest")) | {
            "content-type": "application/json"})  # fmt: skip
        assert keyed.status_code == 201, keyed.text


def test_immediate_runs_the_retro_now(client: TestClient, database: Database) -> None:
    deployed_at = (datetime.now(UTC) - timedelta(hours=30)).replace(microsecond=0)
    body = {
        "service": "sponsor-api",
        "version": "v2.2.0",
        "deployed_at": deployed_at.isoformat(),
        "immediate": True,
    }
    response = client.post(HOOK, json=body, headers=bearer(create_key(database, "ingest")))
    assert response.status_code == 201, response.text
    retro = response.json()["retro"]
    assert retro["status"] == "running"  # claimed for this request; the test client runs it before answering
    [row] = retro_rows(database)
    assert row["status"] == "completed", row["error"]
    shown = client.get(retro["links"]["self"]).json()  # auth on, but GET needs a read key
    assert shown.get("code") == "unauthorized"
    result = client.get(retro["links"]["self"], headers=bearer(create_key(database, "read"))).json()
    assert result["status"] == "completed" and result["kind"] == "deployment"
    assert result["window"]["start"] == deployed_at.isoformat()


def test_immediate_shortly_after_the_deployment_is_refused_naming_immediate(
    client: TestClient, database: Database
) -> None:
    body = {"service": "sponsor-api", "version": "v2.2.0", "immediate": True}
    response = client.post(HOOK, json=body, headers=bearer(create_key(database, "ingest")))
    assert response.status_code == 400
    assert response.json()["field"] == "immediate"
    assert nothing_written(database)


FUTURE = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
BAD_BODIES: list[tuple[Any, str]] = [
    ({"service": "sponsor-api"}, "version"),
    ({"version": "v1"}, "service"),
    ({"service": "sponsor-api", "version": ""}, "version"),
    ({"service": "sponsor-api", "version": "v" * 101}, "version"),
    ({"service": "s" * 129, "version": "v1"}, "service"),
    ({"service": "sponsor-api", "version": 123}, "version"),
    ({"service": "sponsor-api", "version": "v1", "immediate": "yes"}, "immediate"),
    ({"service": "sponsor-api", "version": "v1", "deployed_at": FUTURE}, "deployed_at"),
    ({"service": "sponsor-api", "version": "v1", "deployed_at": "2026-05-01T12:00:00"}, "deployed_at"),
    ({"service": "sponsor-api", "version": "v1", "deployed_at": "yesterday"}, "deployed_at"),
    ({"service": "sponsor-api", "version": "v1", "commit": ["a"]}, "commit"),
    ({"service": "sponsor-api", "version": "v1\nv2"}, "version"),
    ({"service": "sponsor-api", "version": "v1", "team": "x"}, "team"),
    (["service", "version"], "body"),
]


def test_bad_input_is_400_naming_the_field_and_writes_nothing(client: TestClient, database: Database) -> None:
    key = bearer(create_key(database, "ingest")) | {"content-type": "application/json"}
    for body, field in BAD_BODIES:
        response = client.post(HOOK, content=json.dumps(body), headers=key)
        assert response.status_code == 400, (body, response.text)
        answer = response.json()
        assert answer["field"] == field and answer["message"].startswith(field), (body, answer)
    assert nothing_written(database)


def test_malformed_and_oversize_bodies_are_refused(database: Database, tmp_path: Path) -> None:
    with hook_client(database, tmp_path, max_batch_bytes=1024) as client:
        key = bearer(create_key(database, "ingest")) | {"content-type": "application/json"}
        assert client.post(HOOK, content=b"{not json", headers=key).status_code == 400
        oversize = json.dumps({"service": "sponsor-api", "version": "v1", "url": "https://x/" + "a" * 2000})
        response = client.post(HOOK, content=oversize, headers=key)
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert nothing_written(database)


def test_with_auth_off_a_hook_still_needs_a_signature_or_a_real_key(
    database: Database, tmp_path: Path
) -> None:
    body = {"service": "sponsor-api", "version": "v2.3.1"}
    with hook_client(database, tmp_path, auth="off") as client:
        assert client.post(HOOK, json=body).status_code == 401
        assert client.post(HOOK, json=body, headers=bearer("anything")).status_code == 401
        assert nothing_written(database)
        keyed = client.post(HOOK, json=body, headers=bearer(create_key(database, "ingest")))
        assert keyed.status_code == 201, keyed.text


def test_an_unusable_ticket_sink_setting_is_503_naming_it(database: Database, tmp_path: Path) -> None:
    with hook_client(database, tmp_path, ticket_sinks=["github"]) as client:
        body = {"service": "sponsor-api", "version": "v2.3.1"}
        response = client.post(HOOK, json=body, headers=bearer(create_key(database, "ingest")))
    assert response.status_code == 503, response.text
    assert "FEEDBACKLOOP_TICKETS_GITHUB" in response.json()["message"]
    assert nothing_written(database)
