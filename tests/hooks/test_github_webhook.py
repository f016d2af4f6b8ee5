"""POST /integrations/github/webhook on SQLite and PostgreSQL: a signed `deployment_status` success records the
deployment and schedules its retro; signatures are verified (X-Hub-Signature-256), the secret must be set, ping
answers pong, other states and events are ignored, and a redelivery (same status id, whatever its
X-GitHub-Delivery) does nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from store.database import Database
from tests.hooks.support import (
    count,
    deployment_events,
    deployment_status_payload,
    github_headers,
    hook_client,
    retro_rows,
)

WEBHOOK = "/integrations/github/webhook"
SHA = "a10867b14bb761a232cd80139fbd4c0d33264240"


def deliver(client: TestClient, payload: dict[str, Any], **header_options: Any) -> Any:
    raw = json.dumps(payload).encode()
    return client.post(WEBHOOK, content=raw, headers=github_headers(raw, **header_options))


def nothing_written(database: Database) -> bool:
    return (count(database, "events"), count(database, "retros"), count(database, "hook_deliveries")) == (
        0,
        0,
        0,
    )


def test_a_successful_deployment_status_records_the_deployment_and_schedules_its_retro(
    client: TestClient, database: Database
) -> None:
    created_at = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    payload = deployment_status_payload(created_at=created_at.isoformat().replace("+00:00", "Z"))
    response = deliver(client, payload, delivery="f1c2a3b4-cc78-11e3-81ab-4c9367dc0958")
    assert response.status_code == 201, response.text
    outcome = response.json()
    status_key = (
        f"deployment-status-{payload['deployment_status']['id']}"  # the signed body's id, not the header
    )
    assert outcome["delivery"] == {"source": "github", "id": status_key}
    assert outcome["escalation_check"]["status"] == "ran"

    [event] = deployment_events(database)
    assert event["timestamp"] == created_at and event["anonymous_id"] == "system"
    assert event["properties"] | {} == {
        "version": "v2.3.0", "service": "sponsor-api", "environment": "production", "commit": SHA,
        "url": "https://sponsor-api.example.com", "hook": "github",
        "delivery_id": status_key,
    }  # fmt: skip

    [retro] = retro_rows(database)
    assert (retro["kind"], retro["version"], retro["status"]) == ("deployment", "v2.3.0", "scheduled")
    assert retro["run_after"] == created_at + timedelta(hours=24)
    assert outcome["retro"]["id"] == retro["id"] and outcome["retro"]["status"] == "scheduled"


def test_a_redelivery_or_a_replay_under_a_new_delivery_id_does_nothing(
    client: TestClient, database: Database
) -> None:
    payload = deployment_status_payload(created_at=datetime.now(UTC).isoformat())
    first = deliver(client, payload, delivery="d-1")
    replay = deliver(
        client, payload, delivery="d-2"
    )  # X-GitHub-Delivery is not signed: the status id decides
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["duplicate"] is True and replay.json()["retro"]["id"] == first.json()["retro"]["id"]
    assert (len(deployment_events(database)), len(retro_rows(database)), count(database, "hook_deliveries")) == (
        1, 1, 1,
    )  # fmt: skip


@pytest.mark.parametrize(("change", "status"), [("wrong_secret", 401), ("missing", 401), ("tampered", 401)])
def test_a_bad_or_missing_signature_is_401(
    client: TestClient, database: Database, change: str, status: int
) -> None:
    payload = deployment_status_payload(created_at=datetime.now(UTC).isoformat())
    raw = json.dumps(payload).encode()
    headers = github_headers(raw, **({"secret": "not the secret"} if change == "wrong_secret" else {}))
    if change == "missing":
        del headers["X-Hub-Signature-256"]
    if change == "tampered":
        raw = raw.replace(b"v2.3.0", b"v6.6.6")
    response = client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == "invalid_signature"
    assert "FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET" in response.json()["message"]
    assert nothing_written(database)


def test_without_the_secret_the_route_answers_503_naming_the_setting(
    database: Database, tmp_path: Path
) -> None:
    payload = deployment_status_payload(created_at=datetime.now(UTC).isoformat())
    with hook_client(database, tmp_path, github_webhook_secret=None) as client:
        response = deliver(client, payload)
        unsigned = client.post(WEBHOOK, json=payload, headers={"X-GitHub-Event": "deployment_status"})
    assert response.status_code == unsigned.status_code == 503
    assert "FEEDBACKLOOP_GITHUB_WEBHOOK_SECRET" in response.json()["message"]
    assert nothing_written(database)


def test_ping_answers_pong(client: TestClient, database: Database) -> None:
    ping = {
        "zen": "Design for failure.",
        "hook_id": 30,
        "hook": {"type": "Repository", "events": ["deployment_status"]},
    }
    response = deliver(client, ping, event="ping")
    assert response.status_code == 200
    assert response.json() == {"pong": True, "zen": "Design for failure.", "hook_id": 30}
    assert nothing_written(database)


def test_other_states_are_ignored(client: TestClient, database: Database) -> None:
    for state in ("pending", "in_progress", "queued", "failure", "error", "inactive"):
        response = deliver(client, deployment_status_payload(state=state))
        assert response.status_code == 202, state
        assert response.json()["ignored"] is True and repr(state) in response.json()["reason"]
    assert nothing_written(database)


def test_other_events_are_ignored(client: TestClient, database: Database) -> None:
    response = deliver(client, {"ref": "refs/heads/main", "commits": []}, event="push")
    assert response.status_code == 202 and "'push'" in response.json()["reason"]
    assert nothing_written(database)


@pytest.mark.parametrize(
    ("ref", "deployment_payload", "service", "version"),
    [
        ("v2.3.0", {}, "sponsor-api", "v2.3.0"),  # a tag names the version
        ("main", {}, "sponsor-api", SHA[:12]),  # the default branch does not: the short commit does
        (SHA, "", "sponsor-api", SHA[:12]),  # a bare sha
        ("main", {"version": "2026.05.30-1", "service": "reports"}, "reports", "2026.05.30-1"),
        (
            "main",
            json.dumps({"version": "2026.05.30-2"}),
            "sponsor-api",
            "2026.05.30-2",
        ),  # payload as a string
    ],
)
def test_service_and_version_come_from_the_payload_then_the_repository_and_ref(
    client: TestClient, database: Database, ref: str, deployment_payload: Any, service: str, version: str
) -> None:
    payload = deployment_status_payload(
        ref=ref, deployment_payload=deployment_payload, created_at=datetime.now(UTC).isoformat()
    )
    response = deliver(client, payload)
    assert response.status_code == 201, response.text
    assert (response.json()["deployment"]["service"], response.json()["deployment"]["version"]) == (
        service,
        version,
    )


def test_a_payload_without_a_deployment_is_400_naming_it(client: TestClient, database: Database) -> None:
    payload = deployment_status_payload()
    del payload["deployment"]
    response = deliver(client, payload)
    assert response.status_code == 400 and response.json()["field"] == "deployment"
    stale = deployment_status_payload(created_at="2099-01-01T00:00:00Z")
    response = deliver(client, stale)
    assert response.status_code == 400 and response.json()["field"] == "deployment_status.created_at"
    assert nothing_written(database)
