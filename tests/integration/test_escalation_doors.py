"""Escalations through the HTTP and CLI doors, on SQLite and PostgreSQL.

The planted data: `agency` users who each hit two errors the day before T0 (error_rate 2.0 per active user), and
a rule that fires when agency's error_rate is above 0.5 with at least 3 active users.
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, text
from typer.testing import CliRunner

from feedbackloop.api.app import create_app
from feedbackloop.api.escalation_bodies import Comparison
from feedbackloop.cli import app as cli
from feedbackloop.settings import Settings
from store.database import Database
from store.models import OutboxRow
from tests.access.support import bearer, create_key
from tools.escalation.model import COMPARISONS, EscalationRule
from tools.escalation.service import EscalationService
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent

runner = CliRunner()
WIDE = {"COLUMNS": "240"}
T0 = datetime(2026, 3, 10, tzinfo=UTC)
DEFAULT_RULES = ["error_spike", "value_drop", "support_load_increase", "retention_drop", "ltv_degradation"]
TABLES = ("escalation_rules", "escalations", "escalation_history", "silences", "outbox")


def rule(rule_id: str = "agency_errors", **changes: Any) -> dict[str, Any]:
    return {
        "rule_id": rule_id, "escalation_type": "error_spike", "severity": "high",
        "condition": {"metric": "error_rate", "period_days": 7, "baseline": "absolute", "persona": "agency"},
        "threshold": 0.5, "recovery_threshold": 0.2, "comparison": "greater_than", "min_sample": 3,
        "notification_channels": ["file"], **changes,
    }  # fmt: skip


def event(message_id: str, user: str, name: str, at: datetime, **properties: Any) -> CanonicalEvent:
    kind = "identify" if name == "identify" else "track"
    return CanonicalEvent(message_id, kind, name, at, at, user_id=user, properties=properties)


def plant(
    database: Database, *, users: int = 4, errors_each: int = 2, healthy_at: datetime | None = None
) -> None:
    """`users` agency users, identified long before, with `errors_each` errors the day before T0; with
    `healthy_at`, each also generates a report then (active, no errors: error_rate 0 around that time)."""
    events = []
    for index in range(users):
        user = f"agency-{index}"
        events.append(event(f"id-{user}", user, "identify", T0 - timedelta(days=90), persona="agency"))
        for number in range(errors_each):
            events.append(event(f"err-{user}-{number}", user, "error_occurred", T0 - timedelta(days=1, hours=number),
                                error_type="report_failed"))  # fmt: skip
        if healthy_at is not None:
            events.append(event(f"ok-{user}", user, "report_generated", healthy_at, report_id=f"r-{user}"))
    EventIngestor(database).ingest(events)


def snapshot(database: Database) -> dict[str, tuple[int, str]]:
    """Row count and checksum of every escalation table, to prove a refused request changed nothing."""
    found = {}
    with database.read() as connection:
        for table in TABLES:
            rows = sorted(
                repr(tuple(map(str, r))) for r in connection.execute(text(f"SELECT * FROM {table}"))
            )
            found[table] = (len(rows), hashlib.sha256("".join(rows).encode()).hexdigest())
    return found


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database.url,
        notification_file=tmp_path / "notifications.jsonl",
        alert_group_wait_seconds=0,
    )


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database)) as test_client:
        yield test_client


def check(client: TestClient, at: datetime = T0, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/escalations/check", json={"at": at.isoformat(), **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def rule_ids(response: Any) -> list[str]:
    return [r["rule_id"] for r in response.json()["rules"]]


# ---- rules --------------------------------------------------------------------------------------------------


def test_rules_crud_round_trip(client: TestClient) -> None:
    assert rule_ids(client.get("/v1/escalation-rules")) == DEFAULT_RULES  # stored at first start
    created = client.post("/v1/escalation-rules", json=rule())
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/escalation-rules/agency_errors"
    body = created.json()
    assert set(body) == {spec.name for spec in fields(EscalationRule)}
    assert (body["escalation_type"], body["severity"], body["threshold"], body["enabled"]) == (
        "error_spike", "high", 0.5, True,
    )  # fmt: skip
    assert body["condition"] == {"metric": "error_rate", "period_days": 7, "baseline": "absolute",
                                 "persona": "agency"}  # fmt: skip
    assert client.get("/v1/escalation-rules/agency_errors").json() == body
    assert rule_ids(client.get("/v1/escalation-rules")) == [*DEFAULT_RULES, "agency_errors"]

    edited = client.patch("/v1/escalation-rules/agency_errors", json={"threshold": 1.5, "enabled": False})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["threshold"], edited.json()["enabled"]) == (1.5, False)
    assert edited.json()["condition"] == body["condition"]
    hysteresis = client.patch("/v1/escalation-rules/agency_errors", json={"recovery_threshold": 3})
    assert hysteresis.status_code == 422 and hysteresis.json()["field"] == "recovery_threshold"
    renamed = client.patch("/v1/escalation-rules/agency_errors", json={"rule_id": "other"})
    assert renamed.status_code == 422 and renamed.json()["field"] == "rule_id"
    not_object = client.patch("/v1/escalation-rules/agency_errors", json=["enabled"])
    assert not_object.status_code == 422 and not_object.json()["field"] == "body"
    assert client.get("/v1/escalation-rules/agency_errors").json()["threshold"] == 1.5

    taken = client.post("/v1/escalation-rules", json=rule())
    assert taken.status_code == 409, taken.text
    assert taken.json() == {"code": "escalation_state_conflict", "field": "rule_id",
                            "message": "rule_id: a rule with id 'agency_errors' already exists"}  # fmt: skip

    assert client.delete("/v1/escalation-rules/agency_errors").status_code == 204
    gone = {"code": "rule_not_found", "message": "rule 'agency_errors' does not exist"}
    for method in ("GET", "DELETE", "PATCH"):
        response = client.request(
            method, "/v1/escalation-rules/agency_errors", json={} if method == "PATCH" else None
        )
        assert (response.status_code, response.json()) == (404, gone), method
    assert rule_ids(client.get("/v1/escalation-rules")) == DEFAULT_RULES


INVALID_RULES: list[tuple[dict[str, Any], str, str]] = [
        ({"condition": {"metric": "happiness", "baseline": "absolute"}}, "condition.metric", "not a metric or KPI"),
        ({"comparison": "equals"}, "comparison", "must be one of less_than"),
        ({"condition": {"metric": "error_rate", "period_days": -7}}, "condition.period_days", "from 1 to 365"),
        ({"condition": {"metric": "error_rate", "baseline": "yesterday"}}, "condition.baseline", "trailing_N_days"),
        ({"condition": {"metric": "error_rate", "window": 7}}, "condition.window", "not a condition field"),
        ({"comparison": "significant_rise"}, "condition.baseline", "compares with a baseline"),
        ({"recovery_threshold": 0.9}, "recovery_threshold", "≤ threshold"),
        ({"threshold": "high"}, "threshold", "finite number"),
        ({"severity": "urgent"}, "severity", "low, medium, high, critical"),
        ({"escalation_type": "mood_swing"}, "escalation_type", "must be one of"),
        ({"alpha": 0.7}, "alpha", "below 0.5"),
        ({"for_minutes": -5}, "for_minutes", "whole number"),
        ({"min_sample": 0}, "min_sample", "whole number"),
        ({"rule_id": "has space"}, "rule_id", "letters, digits"),
        ({"colour": "red"}, "colour", "is not a rule field"),
        ({"action": "page\u0000"}, "action", "NUL"),
        ({"notification_channels": "slack"}, "notification_channels", "list of channel names"),
]  # fmt: skip


def test_invalid_rules_are_422_naming_the_field_and_store_nothing(
    client: TestClient, database: Database
) -> None:
    before = snapshot(database)
    for (
        changes,
        field,
        fragment,
    ) in INVALID_RULES:  # one app for all cases: each new database costs a migration
        response = client.post("/v1/escalation-rules", json=rule(**changes))
        assert response.status_code == 422, (changes, response.text)
        body = response.json()
        assert body["code"] == "invalid_escalation_request" and body["field"] == field, body
        assert body["message"].startswith(f"{field}:") and fragment in body["message"], body
    assert snapshot(database) == before


# ---- checks and the escalation lifecycle --------------------------------------------------------------------


def test_check_opens_notifies_acknowledge_and_resolve(
    client: TestClient, database: Database, settings: Settings
) -> None:
    plant(database)
    client.post("/v1/escalation-rules", json=rule())
    result = check(client)
    assert result["at"] == T0.isoformat() and result["evaluated"] >= 1 and result["no_data"] >= 0
    assert len(result["fired"]) == 1 and result["opened"] == result["fired"] and result["resolved"] == []
    assert result["notifications"] == 1  # the file channel is configured; group_wait 0
    [escalation] = result["escalations"]
    escalation_id = escalation["escalation_id"]
    assert {k: escalation[k] for k in ("type", "severity", "status", "labels", "affected_personas", "rule_id")} == {
        "type": "error_spike", "severity": "high", "status": "firing", "rule_id": "agency_errors",
        "labels": {"rule": "agency_errors", "persona": "agency", "metric": "error_rate"},
        "affected_personas": ["agency"],
    }  # fmt: skip
    assert escalation["evidence"] == [{"metric": "error_rate", "persona": "agency", "value": 2.0, "baseline": None,
                                       "change": None, "p_value": None, "n": 4}]  # fmt: skip
    assert escalation["opened_at"] == T0.isoformat() and escalation["resolved_at"] is None
    assert "agency" in escalation["title"] and escalation["description"]
    assert [h["kind"] for h in escalation["history"]] == ["fired", "notified"]

    assert client.get(f"/v1/escalations/{escalation_id}").json() == escalation
    firing = client.get("/v1/escalations?status=firing").json()["escalations"]
    assert [e["escalation_id"] for e in firing] == [escalation_id]
    assert client.get("/v1/escalations?status=resolved").json() == {"escalations": []}
    again = check(client, T0 + timedelta(minutes=15))  # still true: no new escalation, nothing new to send
    assert (again["opened"], again["fired"], again["notifications"]) == ([], [], 0)

    acknowledged = client.post(f"/v1/escalations/{escalation_id}/acknowledge", json={"by": "ana"})
    assert acknowledged.status_code == 200, acknowledged.text
    assert (acknowledged.json()["status"], acknowledged.json()["acknowledged_by"]) == ("acknowledged", "ana")
    twice = client.post(f"/v1/escalations/{escalation_id}/acknowledge", json={"by": "ana"})
    assert twice.status_code == 409 and "only a firing escalation" in twice.json()["message"]

    resolved = client.post(f"/v1/escalations/{escalation_id}/resolve",
                           json={"resolved_by": "ben", "resolution_notes": "Fixed in v1.4.1"})  # fmt: skip
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["resolved_by"], body["resolution_notes"]) == (
        "resolved",
        "ben",
        "Fixed in v1.4.1",
    )
    assert [h["kind"] for h in body["history"]] == ["fired", "notified", "acknowledged", "resolved"]
    repeat = client.post(f"/v1/escalations/{escalation_id}/resolve", json={"resolved_by": "ben"})
    assert repeat.status_code == 409 and repeat.json()["field"] == "status"
    quiet = check(client, T0 + timedelta(minutes=30))  # the condition still holds, but a person resolved it
    assert (quiet["opened"], quiet["escalations"]) == ([], [])
    assert [e["status"] for e in client.get("/v1/escalations").json()["escalations"]] == ["resolved"]

    assert settings.notification_file is not None
    assert not settings.notification_file.exists()  # queued in the outbox: the worker sends it
    with database.read() as connection:
        rows = connection.execute(select(OutboxRow.channel, OutboxRow.status, OutboxRow.payload)
                                  .order_by(OutboxRow.created_at)).all()  # fmt: skip
    # The group was told it fired at T0; the next check after group_interval tells it that it resolved.
    assert [(r.channel, r.status, r.payload["status"]) for r in rows] == [
        ("file", "pending", "firing"), ("file", "pending", "resolved"),
    ]  # fmt: skip


def test_check_replays_history_pending_and_auto_resolve(client: TestClient, database: Database) -> None:
    plant(database, healthy_at=T0 + timedelta(days=7))
    client.post("/v1/escalation-rules", json=rule(for_minutes=60))
    pending = check(client)
    [escalation] = pending["escalations"]
    assert escalation["status"] == "pending" and pending["fired"] == [] and pending["notifications"] == 0
    early = client.post(f"/v1/escalations/{escalation['escalation_id']}/acknowledge", json={"by": "ana"})
    assert early.status_code == 409 and "this one is pending" in early.json()["message"]
    fired = check(client, T0 + timedelta(minutes=60))
    assert fired["fired"] == [escalation["escalation_id"]] and fired["notifications"] == 1
    recovered = check(client, T0 + timedelta(days=7, hours=1))  # only reports in this week: error_rate 0
    assert recovered["resolved"] == [escalation["escalation_id"]] and recovered["escalations"] == []
    [closed] = client.get("/v1/escalations?status=resolved").json()["escalations"]
    assert (closed["resolved_by"], closed["evidence"][0]["value"]) == ("auto", 0.0)
    assert closed["resolved_at"] == (T0 + timedelta(days=7, hours=1)).isoformat()
    later = check(client, T0 + timedelta(days=7, hours=2), days=30)  # days: for rules without period_days
    assert (later["resolved"], later["escalations"]) == ([], [])


def test_silences_mute_notifications_and_expire(client: TestClient, database: Database) -> None:
    plant(database)
    client.post("/v1/escalation-rules", json=rule())
    body = {"matchers": [{"label": "persona", "operator": "=", "value": "agency"},
                         {"label": "rule", "operator": "=~", "value": "agency_.*"}],
            "starts_at": (T0 - timedelta(hours=1)).isoformat(), "ends_at": "2099-01-01T00:00:00+00:00",
            "created_by": "ana", "comment": "known: v1.4.1 is rolling out"}  # fmt: skip
    created = client.post("/v1/silences", json=body)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["silence_id"].startswith("sil_") and silence["matchers"] == body["matchers"]
    assert (silence["starts_at"], silence["created_by"]) == (body["starts_at"], "ana")
    muted = check(client)
    assert len(muted["fired"]) == 1 and muted["notifications"] == 0  # it fires, but nobody is told
    assert client.get("/v1/silences?active=true").json() == {"silences": [silence]}

    expired = client.delete(f"/v1/silences/{silence['silence_id']}")
    assert expired.status_code == 200, expired.text
    assert datetime.fromisoformat(expired.json()["ends_at"]) <= datetime.now(UTC)
    assert client.get("/v1/silences?active=true").json() == {"silences": []}
    assert client.get("/v1/silences").json() == {"silences": [expired.json()]}
    assert client.delete("/v1/silences/sil_nope").json() == {
        "code": "silence_not_found", "message": "silence 'sil_nope' does not exist",
    }  # fmt: skip


INVALID_SILENCES: list[tuple[dict[str, Any], str]] = [
        ({"matchers": []}, "matchers"),
        ({"matchers": [{"label": "persona", "operator": "==", "value": "agency"}]}, "matchers[0].operator"),
        ({"matchers": [{"label": "persona", "operator": "=~", "value": "("}]}, "matchers[0].value"),
        ({"matchers": [{"label": "", "value": "agency"}]}, "matchers[0].label"),
        ({"matchers": [{"label": "persona", "value": "a", "weight": 2}]}, "matchers[0].weight"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "2099-01-01T00:00:00"}, "ends_at"),
        ({"ends_at": "next week"}, "ends_at"),
        ({"ends_at": "9999-12-31T23:59:59-05:00"}, "ends_at"),
        ({"starts_at": "0001-01-01T00:00:00+05:00"}, "starts_at"),
        ({"starts_at": "2099-02-01T00:00:00Z"}, "ends_at"),
        ({"created_by": " "}, "created_by"),
        ({"created_by": None}, "created_by"),
        ({"comment": 5}, "comment"),
]  # fmt: skip


def test_invalid_silences_are_422_naming_the_field(client: TestClient, database: Database) -> None:
    before = snapshot(database)
    for changes, field in INVALID_SILENCES:
        body = {"matchers": [{"label": "persona", "value": "agency"}], "ends_at": "2099-01-01T00:00:00Z",
                "created_by": "ana", **changes}  # fmt: skip
        response = client.post("/v1/silences", json=body)
        assert response.status_code == 422, (changes, response.text)
        assert response.json()["field"] == field, (changes, response.json())
    assert snapshot(database) == before


# ---- malformed input, write keys, OpenAPI -------------------------------------------------------------------


def test_malformed_parameters_and_bodies_are_4xx_naming_the_field(
    client: TestClient, database: Database
) -> None:
    before = snapshot(database)
    reads = [
        ("/v1/escalations?status=open", "status"), ("/v1/escalations/a%00b", "escalation_id"),
        ("/v1/escalations/esc%20x", "escalation_id"), (f"/v1/escalations/{'x' * 65}", "escalation_id"),
        ("/v1/escalation-rules/-dash", "rule_id"), ("/v1/escalation-rules/%E2%9C%93", "rule_id"),
        ("/v1/silences?active=maybe", "active"),
    ]  # fmt: skip
    for path, field in reads:
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["field"] == field and response.json()["message"].startswith(f"{field}:"), path
    writes = [
        ("/v1/escalations/check", {"days": 0}, "days"), ("/v1/escalations/check", {"days": 366}, "days"),
        ("/v1/escalations/check", {"days": True}, "days"), ("/v1/escalations/check", {"days": "7"}, "days"),
        ("/v1/escalations/check", {"at": "yesterday"}, "at"),
        ("/v1/escalations/check", {"at": "2026-03-01T00:00:00"}, "at"),
        ("/v1/escalations/check", {"at": "0001-01-01T00:00:00Z"}, "at"),  # would overflow: never a 500
        ("/v1/escalations/check", {"when": "now"}, "when"), ("/v1/escalations/check", [], "body"),
        ("/v1/escalations/esc_x/acknowledge", {}, "by"), ("/v1/escalations/esc_x/acknowledge", {"by": ""}, "by"),
        ("/v1/escalations/esc_x/acknowledge", {"by": "  "}, "by"),
        ("/v1/escalations/esc_x/acknowledge", {"by": "a\u0000"}, "by"),
        ("/v1/escalations/esc_x/resolve", {"by": "ana"}, "resolved_by"),
        ("/v1/escalations/esc_x/resolve", {"resolved_by": "ana", "resolution_notes": 3}, "resolution_notes"),
        ("/v1/escalations/esc_x/resolve", {"resolved_by": "ana", "resolution_notes": "x" * 10_001},
         "resolution_notes"),
        ("/v1/escalation-rules", "rule", "body"), ("/v1/escalation-rules", {**rule(), "threshold": 1e300}, "threshold"),
    ]  # fmt: skip
    for path, body, field in writes:
        response = client.post(path, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["field"] == field, (path, body, response.json())
    for path in ("/v1/escalation-rules", "/v1/escalations/check", "/v1/silences"):
        broken = client.post(path, content=b"{'rule_id':", headers={"content-type": "application/json"})
        assert broken.status_code == 400 and broken.json()["code"] == "invalid_json", path
    nan = client.post("/v1/escalation-rules", content=b'{"threshold": NaN}')
    assert nan.status_code == 400 and nan.json()["code"] == "invalid_json"
    missing = client.post("/v1/escalations/esc_nope/acknowledge", json={"by": "ana"})
    assert missing.json() == {
        "code": "escalation_not_found",
        "message": "escalation 'esc_nope' does not exist",
    }
    assert client.get("/v1/escalations/esc_nope").status_code == 404
    assert client.post("/v1/escalations/esc_nope/resolve", json={"resolved_by": "ana"}).status_code == 404
    assert snapshot(database) == before
    empty = client.post("/v1/escalations/check")  # no body: now, 7 days
    assert empty.status_code == 200 and empty.json()["escalations"] == []


def test_bodies_over_the_configured_limit_are_413(database: Database) -> None:
    settings = Settings(database_url=database.url, max_batch_bytes=4096)
    with TestClient(create_app(settings, database)) as client:
        response = client.post("/v1/escalation-rules", json=rule(description="x" * 5000))
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
        notes = {"resolved_by": "ana", "resolution_notes": "y" * 5000}
        assert client.post("/v1/escalations/esc_x/resolve", json=notes).status_code == 413
        assert client.post("/v1/escalation-rules", json=rule()).status_code == 201


def test_write_routes_ask_for_an_admin_key_and_reads_for_a_read_key(database: Database) -> None:
    settings = Settings(database_url=database.url, write_keys=[SecretStr("sekrit")], auth="on")
    with TestClient(create_app(settings, database)) as client:
        before = snapshot(database)
        writes = [
            ("POST", "/v1/escalation-rules", rule()), ("PATCH", "/v1/escalation-rules/error_spike", {"enabled": False}),
            ("DELETE", "/v1/escalation-rules/error_spike", None), ("POST", "/v1/escalations/check", {}),
            ("POST", "/v1/escalations/esc_x/acknowledge", {"by": "ana"}),
            ("POST", "/v1/escalations/esc_x/resolve", {"resolved_by": "ana"}),
            ("POST", "/v1/silences", {"matchers": [{"label": "persona", "value": "a"}], "created_by": "ana",
                                      "ends_at": "2099-01-01T00:00:00Z"}),
            ("DELETE", "/v1/silences/sil_x", None),
        ]  # fmt: skip
        for method, path, body in writes:
            refused = client.request(method, path, json=body)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized", (method, path)
            wrong = client.request(method, path, json=body, headers={"authorization": "Bearer guess"})
            assert wrong.status_code == 401, (method, path)
        assert snapshot(database) == before
        # a write key (FEEDBACKLOOP_WRITE_KEYS) is an ingest key
        basic = {"authorization": "Basic " + base64.b64encode(b"sekrit:").decode()}
        assert client.post("/v1/escalation-rules", json=rule(), headers=basic).status_code == 403
        admin = bearer(create_key(database, "admin").key)
        assert client.post("/v1/escalation-rules", json=rule(), headers=admin).status_code == 201
        checked = client.post("/v1/escalations/check", json={}, headers=admin)
        assert checked.status_code == 200, checked.text
        read = bearer(create_key(database, "read").key)
        for path in (
            "/v1/escalation-rules",
            "/v1/escalation-rules/error_spike",
            "/v1/escalations",
            "/v1/silences",
        ):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=read).status_code == 200, path


def test_escalation_routes_are_typed_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    assert set(paths["/v1/escalation-rules"]) == {"get", "post"}
    assert set(paths["/v1/escalation-rules/{rule_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/v1/silences"]) == {"get", "post"} and set(paths["/v1/silences/{silence_id}"]) == {
        "delete"
    }
    for path in ("/v1/escalations/check", "/v1/escalations/{escalation_id}/acknowledge",
                 "/v1/escalations/{escalation_id}/resolve"):  # fmt: skip
        assert {"200", "401", "404", "409", "413", "422"} <= set(paths[path]["post"]["responses"]), path
    ok = paths["/v1/escalations/check"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/CheckOut"}
    listed = paths["/v1/escalations"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"$ref": "#/components/schemas/EscalationList"}
    status = next(p for p in paths["/v1/escalations"]["get"]["parameters"] if p["name"] == "status")
    assert "EscalationStatus" in json.dumps(status["schema"])
    assert set(schemas["EscalationStatus"]["enum"]) == {"pending", "firing", "acknowledged", "resolved"}
    assert set(schemas["EvidenceOut"]["properties"]) == {"metric", "persona", "value", "baseline", "change",
                                                         "p_value", "n"}  # fmt: skip
    create = paths["/v1/escalation-rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(create["properties"]) == {spec.name for spec in fields(EscalationRule)}
    assert create["properties"]["comparison"]["enum"] == list(COMPARISONS)
    assert typing.get_args(Comparison) == COMPARISONS
    assert set(schemas["RuleOut"]["properties"]) == {spec.name for spec in fields(EscalationRule)}


# ---- CLI ----------------------------------------------------------------------------------------------------


@pytest.fixture
def planted(database: Database) -> Database:
    plant(database)
    service = EscalationService(database)
    service.ensure_default_rules()
    service.add_rule(rule())
    return database


def invoke(database: Database, *arguments: str, **extra: Any) -> Any:
    return runner.invoke(cli, ["escalations", *arguments, "--database-url", database.url], env=WIDE, **extra)


def test_cli_check_list_show_acknowledge_resolve(planted: Database) -> None:
    checked = invoke(planted, "check", "--at", T0.isoformat())
    assert checked.exit_code == 0, checked.output
    [escalation_id] = [e.escalation_id for e in EscalationService(planted).escalations("firing")]
    assert "opened 1, fired 1, resolved 0" in checked.output
    assert f"fired    {escalation_id}  Error spike: error_rate for agency above 0.5" in checked.output
    assert "1 active" in checked.output and "error_spike" in checked.output
    as_json = json.loads(invoke(planted, "check", "--at", (T0 + timedelta(minutes=5)).isoformat(),
                                "--format", "json").output)  # fmt: skip
    assert [(e["escalation_id"], e["status"], e["type"]) for e in as_json] == [
        (escalation_id, "firing", "error_spike")
    ]
    assert as_json[0]["evidence"][0] == {"metric": "error_rate", "persona": "agency", "value": 2.0, "baseline": None,
                                         "change": None, "p_value": None, "n": 4}  # fmt: skip

    listed = invoke(planted, "list", "--status", "firing")
    assert listed.exit_code == 0 and escalation_id in listed.output and "1 escalation" in listed.output
    for fragment in ("firing", "high", "error_spike", "agency", "2026-03-10 00:00"):
        assert fragment in listed.output, fragment
    assert json.loads(invoke(planted, "list", "--status", "resolved", "--format", "json").output) == []

    shown = invoke(planted, "show", escalation_id)
    assert shown.exit_code == 0, shown.output
    for fragment in ("evidence", "error_rate", "history", "fired", "rule=agency_errors", "│ 2 "):
        assert fragment in shown.output, fragment
    assert json.loads(invoke(planted, "show", escalation_id, "--format", "json").output)["status"] == "firing"

    acknowledged = invoke(planted, "acknowledge", escalation_id, "--by", "ana")
    assert (
        acknowledged.exit_code == 0
        and f"escalation {escalation_id} acknowledged by ana" in acknowledged.output
    )
    resolved = invoke(planted, "resolve", escalation_id, "--by", "ben", "--notes", "Fixed in v1.4.1")
    assert resolved.exit_code == 0 and "resolved by ben" in resolved.output, resolved.output
    detail = json.loads(invoke(planted, "show", escalation_id, "--format", "json").output)
    assert (detail["status"], detail["resolution_notes"]) == ("resolved", "Fixed in v1.4.1")
    again = invoke(planted, "resolve", escalation_id, "--by", "ben")
    assert again.exit_code == 2 and "is already resolved" in again.output


def test_cli_rules_list_add_disable_enable(database: Database, tmp_path: Path) -> None:
    listed = invoke(database, "rules", "list")
    assert listed.exit_code == 0, listed.output
    for fragment in (*DEFAULT_RULES, "rises ≥ 75% (p < 0.01)", "< 0", "5 rules"):
        assert fragment in listed.output, fragment
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule()), encoding="utf-8")
    added = invoke(database, "rules", "add", str(path))
    assert added.exit_code == 0, added.output
    assert "rule agency_errors added: error_spike (high) when error_rate > 0.5" in added.output
    yaml_path = tmp_path / "rule.yaml"
    yaml_path.write_text(
        "rule_id: agency_nps\nescalation_type: value_drop\nseverity: medium\ncomparison: less_than\nthreshold: 10\n"
        "condition:\n  metric: nps\n  persona: agency\n  baseline: absolute\n", encoding="utf-8",
    )  # fmt: skip
    from_yaml = invoke(database, "rules", "add", str(yaml_path), "--format", "json")
    assert from_yaml.exit_code == 0, from_yaml.output
    assert json.loads(from_yaml.output)["condition"] == {
        "metric": "nps",
        "persona": "agency",
        "baseline": "absolute",
    }
    from_stdin = invoke(database, "rules", "add", "-", input=json.dumps(rule("stdin_rule")))
    assert from_stdin.exit_code == 0, from_stdin.output

    assert "rule agency_errors disabled" in invoke(database, "rules", "disable", "agency_errors").output
    rules = {
        r["rule_id"]: r for r in json.loads(invoke(database, "rules", "list", "--format", "json").output)
    }
    assert list(rules) == [*DEFAULT_RULES, "agency_errors", "agency_nps", "stdin_rule"]
    assert rules["agency_errors"]["enabled"] is False and rules["agency_nps"]["enabled"] is True
    assert "rule agency_errors enabled" in invoke(database, "rules", "enable", "agency_errors").output
    assert EscalationService(database).rule("agency_errors").enabled is True

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rule("bad", condition={"metric": "happiness"})), encoding="utf-8")
    refused = invoke(database, "rules", "add", str(bad))
    assert (
        refused.exit_code == 2 and f"{bad}: condition.metric: 'happiness' is not a metric" in refused.output
    )
    taken = invoke(database, "rules", "add", str(path))
    assert taken.exit_code == 2 and "a rule with id 'agency_errors' already exists" in taken.output
    unknown = invoke(database, "rules", "disable", "nope")
    assert unknown.exit_code == 2
    assert "rule 'nope' does not exist; `feedbackloop escalations rules list` shows the ids" in unknown.output


def test_cli_silences_add_list_expire(database: Database) -> None:
    added = invoke(database, "silences", "add", "--matcher", "persona=agency", "--matcher", "rule=~error_.*",
                   "--matcher", "metric!=nps", "--for-hours", "2", "--by", "ana", "--comment", "rollout",
                   "--format", "json")  # fmt: skip
    assert added.exit_code == 0, added.output
    silence = json.loads(added.output)
    assert silence["matchers"] == [
        {"label": "persona", "operator": "=", "value": "agency"},
        {"label": "rule", "operator": "=~", "value": "error_.*"},
        {"label": "metric", "operator": "!=", "value": "nps"},
    ]
    length = datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"])
    assert timedelta(hours=2) - timedelta(seconds=5) < length <= timedelta(hours=2)
    listed = invoke(database, "silences", "list", "--active")
    assert listed.exit_code == 0 and silence["silence_id"] in listed.output and "active" in listed.output
    assert "persona=agency, rule=~error_.*, metric!=nps" in listed.output
    expired = invoke(database, "silences", "expire", silence["silence_id"])
    assert expired.exit_code == 0 and f"silence {silence['silence_id']} expired" in expired.output
    assert json.loads(invoke(database, "silences", "list", "--active", "--format", "json").output) == []
    assert "expired" in invoke(database, "silences", "list").output
    until = invoke(database, "silences", "add", "--matcher", "persona=agency", "--ends-at", "2099-01-01T00:00:00Z",
                   "--by", "ana")  # fmt: skip
    assert until.exit_code == 0 and "until 2099-01-01T00:00:00+00:00" in until.output, until.output


BAD_CLI_INPUT: list[tuple[list[str], str]] = [
        (["show", "esc_nope"], "escalation 'esc_nope' does not exist; `feedbackloop escalations list` shows the ids"),
        (["acknowledge", "esc_nope", "--by", "ana"], "escalation 'esc_nope' does not exist"),
        (["acknowledge", "esc_nope", "--by", " "], "--by: must be a non-empty name"),
        (["resolve", "esc_nope", "--by", "ana", "--notes", "a\u0000"], "--notes: must be text"),
        (["list", "--status", "open"], "--status: must be one of pending, firing, acknowledged, resolved"),
        (["list", "--format", "xml"], "--format: 'xml' is not one of table, json"),
        (["check", "--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 date-time"),
        (["check", "--at", "2026-03-01T00:00:00"], "--at: needs a UTC offset"),
        (["check", "--at", "0001-01-01T00:00:00Z"], "--at: must be from 1970-01-01 to before 9000-01-01"),
        (["check", "--days", "0"], "--days: must be a whole number from 1 to 365"),
        (["rules", "add", "/nonexistent/rule.json"], "/nonexistent/rule.json: No such file"),
        (["silences", "expire", "sil_nope"], "silence 'sil_nope' does not exist"),
        (["silences", "add", "--matcher", "persona", "--for-hours", "1", "--by", "a"], "--matcher: 'persona' is not"),
        (["silences", "add", "--matcher", "persona=~(", "--for-hours", "1", "--by", "a"],
         "--matcher: is not a valid regular expression"),
        (["silences", "add", "--matcher", "persona=a", "--by", "a"], "give exactly one of them"),
        (["silences", "add", "--matcher", "persona=a", "--for-hours", "1", "--ends-at", "2099-01-01T00:00:00Z",
          "--by", "a"], "give exactly one of them"),
        (["silences", "add", "--matcher", "persona=a", "--for-hours", "0", "--by", "a"], "--for-hours: must be more"),
        (["silences", "add", "--matcher", "persona=a", "--ends-at", "2099-01-01", "--by", "a"],
         "--ends-at: needs a UTC offset"),
        (["silences", "add", "--matcher", "persona=a", "--ends-at", "2020-01-01T00:00:00Z", "--by", "a"],
         "--ends-at: must be after starts_at"),
]  # fmt: skip


def test_cli_bad_input_exits_2_naming_it(database: Database) -> None:
    EscalationService(database).ensure_default_rules()  # what every command does first
    before = snapshot(database)
    for arguments, fragment in BAD_CLI_INPUT:
        result = invoke(database, *arguments)
        assert result.exit_code == 2, (arguments, result.output)
        assert fragment in result.output, (arguments, result.output)
    assert snapshot(database) == before
