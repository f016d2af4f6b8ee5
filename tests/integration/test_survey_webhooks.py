"""A survey's outbound webhook: written with the response, signed (verified by the `standardwebhooks` reference
library), retried on 5xx / 429 (Retry-After honoured) and timeouts, final on other 4xx — on both databases."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from typer.testing import CliRunner

from feedbackloop.cli import app
from store.database import Database
from store.models import OutboxRow
from tools.notify.delivery import backoff_seconds, deliver_due, parse_retry_after
from tools.surveys.errors import SurveyInputError
from tools.surveys.service import SurveyService

SECRET = "whsec_" + base64.b64encode(b"feedbackloop-test-secret-32bytes").decode()
ANSWERS = {"satisfaction": 4, "effort": 6, "comment": "Smooth."}


class Receiver:
    """A local HTTP receiver answering with scripted statuses, recording what it got."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/surveys"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", []))
    yield server
    server.close()


def _answered(
    database: Database, url: str | None, at: datetime, *, partial_first: bool = False
) -> SurveyService:
    service = SurveyService(database, clock=lambda: at)
    service.create({
        "survey_id": "pulse", "survey_type": "feature_satisfaction", "trigger": "feature_done",
        "questions": [...], "webhook_url": url,
    })  # fmt: skip
    decision = service.trigger("u1", "feature_done", at=at)
    if partial_first:
        service.respond({"satisfaction": 4}, display_id=decision.display_id, partial=True, at=at)
        assert _outbox(database) == []  # nothing to announce until the response is complete
    service.respond(ANSWERS, display_id=decision.display_id, at=at)
    service.respond(ANSWERS, display_id=decision.display_id, at=at)  # a retried submission: no second message
    return service


def _outbox(database: Database) -> list[Any]:
    with database.read() as connection:
        return list(connection.execute(select(OutboxRow.__table__)).mappings())


@pytest.mark.parametrize("receiver", [[(500, {}), (429, {"Retry-After": "120"}), (200, {})]], indirect=True)
def test_retries_then_delivers_a_signed_message(database: Database, receiver: Receiver) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _answered(database, receiver.url, now, partial_first=True)
    [message] = _outbox(database)
    assert (message["status"], message["event_type"], message["destination"]) == (
        "pending", "survey.response.completed", receiver.url,
    )  # fmt: skip
    with httpx.Client(timeout=5) as client:
        first = deliver_due(database, secret=SECRET, client=client, clock=lambda: now)
        assert (first.delivered, first.retrying, first.failed) == (0, 1, 0)
        [row] = _outbox(database)
        assert (row["attempts"], row["last_status_code"]) == (1, 500)
        assert row["next_attempt_at"] == now + timedelta(seconds=30)
        early = deliver_due(database, secret=SECRET, client=client, clock=lambda: now + timedelta(seconds=29))
        assert (early.delivered, early.retrying, early.failed) == (0, 0, 0) and len(receiver.received) == 1
        second_at = now + timedelta(seconds=31)
        second = deliver_due(database, secret=SECRET, client=client, clock=lambda: second_at)
        assert second.retrying == 1
        [row] = _outbox(database)
        assert row["next_attempt_at"] == second_at + timedelta(
            seconds=120
        )  # Retry-After beats the 60 s backoff
        third_at = second_at + timedelta(seconds=121)
        third = deliver_due(database, secret=SECRET, client=client, clock=lambda: third_at)
        assert (third.delivered, third.retrying, third.failed) == (1, 0, 0)
    [row] = _outbox(database)
    assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 3, third_at)

    headers, body = receiver.received[-1]
    payload = Webhook(SECRET).verify(body, headers)  # raises unless the signature and timestamp are valid
    assert headers["webhook-id"] == message["id"]
    assert {h["webhook-id"] for h, _ in receiver.received} == {message["id"]}  # same id on every retry
    assert payload["type"] == "survey.response.completed"
    assert payload["data"]["answers"] == ANSWERS and payload["data"]["survey_id"] == "pulse"
    tampered = json.dumps(payload | {"type": "forged"}).encode()
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)


@pytest.mark.parametrize("receiver", [[(410, {})]], indirect=True)
def test_other_client_errors_are_final(database: Database, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    _answered(database, receiver.url, now)
    report = deliver_due(database, secret=SECRET, clock=lambda: now)
    assert (report.delivered, report.retrying, report.failed) == (0, 0, 1)
    assert "HTTP 410" in report.errors[0]
    [row] = _outbox(database)
    assert (row["status"], row["last_status_code"]) == ("failed", 410)
    later = deliver_due(database, secret=SECRET, clock=lambda: now + timedelta(days=1))
    assert (later.delivered, later.retrying, later.failed) == (0, 0, 0) and len(receiver.received) == 1


def test_unreachable_receiver_is_retried_until_max_attempts(database: Database) -> None:
    now = datetime.now(UTC)
    _answered(database, "http://127.0.0.1:9/closed", now)  # port 9 (discard): connection refused
    at = now
    for attempt in range(1, 4):
        report = deliver_due(database, secret=SECRET, clock=lambda moment=at: moment, max_attempts=3)
        [row] = _outbox(database)
        assert row["attempts"] == attempt
        at = row["next_attempt_at"]
    assert (report.failed, row["status"]) == (1, "failed")
    assert "ConnectError" in (row["last_error"] or "")


def test_no_webhook_url_no_message_and_bad_url_refused(database: Database) -> None:
    _answered(database, None, datetime(2026, 3, 1, tzinfo=UTC))
    assert _outbox(database) == []
    with pytest.raises(SurveyInputError, match="webhook_url"):
        SurveyService(database).update("pulse", {"webhook_url": "javascript:alert(1)"})


def test_backoff_and_retry_after_parsing() -> None:
    assert [backoff_seconds(n, None) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert backoff_seconds(20, None) == 3600.0 and backoff_seconds(1, 900.0) == 900.0
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


@pytest.mark.parametrize("receiver", [[(200, {})]], indirect=True)
def test_cli_delivers_and_refuses_without_a_secret(
    database: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedbackloop.settings import get_settings

    _answered(database, receiver.url, datetime.now(UTC))
    runner = CliRunner()
    refused = runner.invoke(app, ["webhooks", "deliver", "--database-url", database.url])
    assert refused.exit_code == 2 and "FEEDBACKLOOP_WEBHOOK_SECRET" in refused.output
    monkeypatch.setenv("FEEDBACKLOOP_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    try:
        sent = runner.invoke(app, ["webhooks", "deliver", "--database-url", database.url])
        status = runner.invoke(app, ["webhooks", "status", "--database-url", database.url])
    finally:
        get_settings.cache_clear()
    assert sent.exit_code == 0 and "delivered 1" in sent.output
    assert status.exit_code == 0 and "delivered" in status.output
    Webhook(SECRET).verify(receiver.received[0][1], receiver.received[0][0])
    with database.read() as connection:
        delivered = connection.execute(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "delivered")
        ).scalar_one()
    assert delivered == 1
