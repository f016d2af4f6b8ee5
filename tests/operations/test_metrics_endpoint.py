"""GET /metrics on SQLite and PostgreSQL: the Prometheus text parses, and its figures match the store after events
were ingested over HTTP, an escalation check fired (queueing a notification in the outbox) and retros recorded
LLM usage; requests are counted under their route template; the route needs a read key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from feedbackloop.api.app import create_app
from feedbackloop.settings import Settings
from feedbackloop.worker import escalation_service
from store.database import Database
from store.models import EscalationInstanceRow, EscalationRow, OutboxRow
from store.repositories import api_keys, retros

NOW = datetime.now(UTC).replace(microsecond=0)
RULE = {
    "rule_id": "agency_errors", "escalation_type": "error_spike", "severity": "high",
    "condition": {"metric": "error_rate", "period_days": 7, "baseline": "absolute", "persona": "agency"},
    "threshold": 0.5, "recovery_threshold": 0.2, "comparison": "greater_than", "min_sample": 3,
    "notification_channels": ["file"],
}  # fmt: skip

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> tuple[set[str], Samples]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.text))
    samples: Samples = {}
    for family in families:
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return {family.name for family in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def batch(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"batch": messages}


def agency_events() -> list[dict[str, Any]]:
    """Four agency users with two errors each yesterday: RULE fires for agency."""
    events: list[dict[str, Any]] = []
    for index in range(4):
        user = f"agency-{index}"
        identified = (NOW - timedelta(days=90)).isoformat()
        events.append({"type": "identify", "userId": user, "messageId": f"id-{user}", "timestamp": identified,
                       "traits": {"persona": "agency"}})  # fmt: skip
        for number in range(2):
            moment = NOW - timedelta(days=1, hours=number)
            events.append({"type": "track", "event": "Error Occurred", "userId": user,
                           "messageId": f"err-{user}-{number}", "timestamp": moment.isoformat(),
                           "properties": {"error_type": "report_failed"}})  # fmt: skip
    return events


def retro_row(retro_id: str, status: str, usage: dict[str, int] | None, model: str | None) -> dict[str, Any]:
    result = None if usage is None else {"retro_id": retro_id, "model": model, "usage": usage, "signals": []}
    return {
        "id": retro_id, "kind": "sprint", "sprint_id": retro_id, "version": None,
        "window_start": NOW - timedelta(days=14), "window_end": NOW, "status": status, "request": {},
        "result": result, "error": None, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database.url,
        auth="off",
        notification_file=tmp_path / "notifications.jsonl",
        alert_group_wait_seconds=0,
    )


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database)) as test_client:
        yield test_client


def test_families_match_the_store(database: Database, settings: Settings, client: TestClient) -> None:
    events = agency_events()
    assert client.post("/v1/batch", json=batch(events)).status_code == 200
    assert client.post("/v1/batch", json=batch(events[:3])).status_code == 200  # a replay: duplicates
    service = escalation_service(database, settings)
    service.add_rule(RULE)
    check = service.check(at=NOW)
    assert check.fired and check.notifications == 1
    with database.write() as connection:
        llm_usage = {"llm_calls": 2, "input_tokens": 900, "output_tokens": 150}
        retros.create_retro(connection, retro_row("retro-llm", "completed", llm_usage, "qwen3"))
        rules_usage = {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0}
        retros.create_retro(connection, retro_row("retro-rules", "completed", rules_usage, None))
        retros.create_retro(connection, retro_row("retro-waiting", "scheduled", None, None))
    if database.dialect == "postgresql":
        with database.write() as connection:
            connection.execute(text("ANALYZE events"))

    names, samples = scrape(client)

    expected_families = {
        "feedbackloop_http_requests", "feedbackloop_http_request_duration_seconds", "feedbackloop_ingested_events",
        "feedbackloop_store_up", "feedbackloop_events_stored_estimate", "feedbackloop_outbox_messages",
        "feedbackloop_outbox_oldest_pending_created_timestamp_seconds", "feedbackloop_escalations_open",
        "feedbackloop_escalation_label_sets", "feedbackloop_escalation_last_check_timestamp_seconds",
        "feedbackloop_escalation_last_check_label_sets", "feedbackloop_retros", "feedbackloop_llm_calls",
        "feedbackloop_llm_tokens",
    }  # fmt: skip
    assert expected_families <= names
    assert value(samples, "feedbackloop_store_up") == 1
    assert value(samples, "feedbackloop_ingested_events_total", outcome="stored") == len(events)
    assert value(samples, "feedbackloop_ingested_events_total", outcome="duplicate") == 3
    assert value(samples, "feedbackloop_events_stored_estimate") == len(events)

    with database.read() as connection:
        outbox = connection.execute(
            select(OutboxRow.channel, OutboxRow.status, func.count(), func.min(OutboxRow.created_at))
            .group_by(OutboxRow.channel, OutboxRow.status)
        ).all()  # fmt: skip
        firing_high = connection.execute(
            select(func.count()).where(EscalationRow.status == "firing", EscalationRow.severity == "high")
        ).scalar()
        states = dict(
            connection.execute(
                select(EscalationInstanceRow.state, func.count()).group_by(EscalationInstanceRow.state)
            ).all()
        )
    assert [(channel, status) for channel, status, _, _ in outbox] == [("file", "pending")]
    for channel, status, n, oldest in outbox:
        assert value(samples, "feedbackloop_outbox_messages", channel=channel, status=status) == n
        assert value(
            samples, "feedbackloop_outbox_oldest_pending_created_timestamp_seconds", channel=channel
        ) == (pytest.approx(oldest.timestamp()))
    assert firing_high == 1
    assert value(samples, "feedbackloop_escalations_open", status="firing", severity="high") == 1
    assert value(samples, "feedbackloop_escalations_open", status="pending", severity="critical") == 0
    for state, n in states.items():
        assert value(samples, "feedbackloop_escalation_label_sets", state=state) == n
    assert value(samples, "feedbackloop_escalation_last_check_timestamp_seconds") == NOW.timestamp()
    assert value(samples, "feedbackloop_escalation_last_check_label_sets") == check.evaluated

    assert value(samples, "feedbackloop_retros", status="completed") == 2
    assert value(samples, "feedbackloop_retros", status="scheduled") == 1
    assert value(samples, "feedbackloop_retros", status="failed") == 0
    assert value(samples, "feedbackloop_llm_calls_total", agent="retro", model="qwen3") == 2
    assert (
        value(samples, "feedbackloop_llm_tokens_total", agent="retro", model="qwen3", direction="input")
        == 900
    )
    assert (
        value(samples, "feedbackloop_llm_tokens_total", agent="retro", model="qwen3", direction="output")
        == 150
    )
    assert not any(
        labels and dict(labels).get("model") == "unknown" for _, labels in samples
    )  # rules: no LLM

    # A retro that later records more usage is read again (its updated_at changed); the others are not re-read.
    with database.write() as connection:
        retros.update_retro(connection, "retro-waiting", {
            "status": "completed", "updated_at": NOW + timedelta(minutes=5),
            "result": {"model": "qwen3", "usage": {"llm_calls": 3, "input_tokens": 1000, "output_tokens": 200}},
        })  # fmt: skip
    _, later = scrape(client)
    assert value(later, "feedbackloop_llm_calls_total", agent="retro", model="qwen3") == 5
    assert (
        value(later, "feedbackloop_llm_tokens_total", agent="retro", model="qwen3", direction="input") == 1900
    )
    assert value(later, "feedbackloop_retros", status="completed") == 3


def test_postgresql_events_estimate_is_absent_before_analyze(database: Database, client: TestClient) -> None:
    assert client.post("/v1/batch", json=batch(agency_events())).status_code == 200
    _, samples = scrape(client)
    estimate = value(samples, "feedbackloop_events_stored_estimate")
    if database.dialect == "postgresql":
        assert estimate is None  # a fresh table has no planner estimate yet: absent, never a wrong 0
    else:
        assert estimate == len(agency_events())


def test_requests_are_counted_under_their_route_template(client: TestClient) -> None:
    for escalation_id in ("esc_a", "esc_b", "esc_c"):
        assert client.get(f"/v1/escalations/{escalation_id}").status_code == 404
    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/path/12345").status_code == 404
    _, samples = scrape(client)
    route = "/v1/escalations/{escalation_id}"
    assert value(samples, "feedbackloop_http_requests_total", method="GET", route=route, status="404") == 3
    assert (
        value(samples, "feedbackloop_http_requests_total", method="GET", route="/healthz", status="200") == 1
    )
    assert (
        value(samples, "feedbackloop_http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    assert value(samples, "feedbackloop_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert not any("esc_a" in str(labels) or "12345" in str(labels) for _, labels in samples)


def test_an_invented_method_is_counted_as_other(client: TestClient) -> None:
    for invented in ("XYZZY", "FOO", "BAR"):
        client.request(invented, "/whatever")
    _, samples = scrape(client)
    assert (
        value(samples, "feedbackloop_http_requests_total", method="other", route="unmatched", status="404")
        == 3
    )
    assert not any(name in str(labels) for name in ("XYZZY", "FOO", "BAR") for _, labels in samples)


def test_metrics_needs_a_read_key(database: Database, tmp_path: Path) -> None:
    settings = Settings(database_url=database.url, auth="on")
    with database.write() as connection:
        read_key = api_keys.create(connection, scope="read", name="prometheus", now=NOW).key
        ingest_key = api_keys.create(connection, scope="ingest", name="sdk", now=NOW).key
    with TestClient(create_app(settings, database)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {ingest_key}"}).status_code == 403
        names, samples = scrape(client, Authorization=f"Bearer {read_key}")
    assert "feedbackloop_store_up" in names
    assert (
        value(samples, "feedbackloop_http_requests_total", method="GET", route="/metrics", status="401") == 1
    )
    assert (
        value(samples, "feedbackloop_http_requests_total", method="GET", route="/metrics", status="403") == 1
    )
