"""The generic escalation webhook: Standard Webhooks signatures checked by the reference `standardwebhooks`
library, the same webhook-id on every retry of one notification, and HTTP answers classified."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.notify.conftest import LocalHTTPServer, Reply
from tests.notify.support import SECRET, firing, resolved
from tools.notify.channels.webhook import WebhookNotifier, webhook_id


def _now() -> datetime:
    return datetime.now(UTC)  # the reference verifier checks the timestamp against the real clock


def test_signed_body_verifies_with_the_reference_library(http_server: LocalHTTPServer) -> None:
    notification = firing()
    attempt = WebhookNotifier(http_server.url("/hooks/escalations"), SECRET).send(notification, now=_now())

    assert attempt.delivered and attempt.status_code == 200
    [request] = http_server.received
    assert request.path == "/hooks/escalations"
    verified = Webhook(SECRET).verify(request.body, request.headers)
    assert verified == json.loads(request.body)
    assert verified["type"] == "escalation.group.firing"
    assert verified["timestamp"] == "2026-03-02T06:00:00+00:00"
    assert verified["data"] == notification.as_dict()
    assert verified["data"]["alerts"][0]["evidence"][0]["p_value"] == 0.000123
    assert request.headers["webhook-id"] == webhook_id(notification)

    other_secret = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-b!!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request.body, request.headers)
    tampered = request.body.replace(b"podcast_network", b"agency")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)


def test_a_retried_notification_keeps_its_webhook_id(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(503, "down", {"Retry-After": "2"}), Reply(200, ""))
    notifier = WebhookNotifier(http_server.url(), SECRET)
    notification = firing()

    moment = _now()  # one reading: two clock reads could straddle a second and sign 61 s apart
    first = notifier.send(notification, now=moment - timedelta(seconds=60))
    second = notifier.send(notification, now=moment)

    assert (first.status_code, first.retryable, first.retry_after_seconds) == (503, True, 2.0)
    assert second.delivered
    ids = [request.headers["webhook-id"] for request in http_server.received]
    assert ids[0] == ids[1] == webhook_id(notification) and ids[0].startswith("msg_")
    stamps = [int(request.headers["webhook-timestamp"]) for request in http_server.received]
    assert stamps[1] - stamps[0] == 60  # each attempt is signed at its own time
    assert Webhook(SECRET).verify(http_server.received[1].body, http_server.received[1].headers)


def test_ids_differ_between_status_and_time_and_resolved_has_its_type(http_server: LocalHTTPServer) -> None:
    later = firing(sent_at=firing().sent_at + timedelta(minutes=5))
    assert len({webhook_id(firing()), webhook_id(resolved()), webhook_id(later)}) == 3

    WebhookNotifier(http_server.url(), SECRET).send(resolved(), now=_now())
    body = Webhook(SECRET).verify(http_server.received[0].body, http_server.received[0].headers)
    assert body["type"] == "escalation.group.resolved"
    assert [alert["status"] for alert in body["data"]["alerts"]] == ["resolved", "resolved"]


@pytest.mark.parametrize(("status", "retryable"), [(410, False), (422, False), (429, True), (500, True)])
def test_http_answers_are_classified(http_server: LocalHTTPServer, status: int, retryable: bool) -> None:
    http_server.script(Reply(status, "answer"))
    attempt = WebhookNotifier(http_server.url(), SECRET).send(firing(), now=_now())
    assert (attempt.status_code, attempt.retryable, attempt.delivered) == (status, retryable, False)
    assert attempt.error == f"HTTP {status}: answer"


def test_connection_refused_is_retryable(unused_port: int) -> None:
    attempt = WebhookNotifier(f"http://127.0.0.1:{unused_port}/", SECRET).send(firing(), now=_now())
    assert (attempt.status_code, attempt.retryable) == (None, True)
    assert attempt.error is not None and "ConnectError" in attempt.error


def test_an_unusable_secret_or_url_fails_when_built() -> None:
    with pytest.raises(ValueError, match="base64"):
        WebhookNotifier("https://example.test/hook", "whsec_not*base64!")
    with pytest.raises(ValueError, match="alert webhook URL"):
        WebhookNotifier("ftp://example.test/hook", SECRET)
    assert SECRET not in repr(WebhookNotifier("https://example.test/hook", SECRET))
