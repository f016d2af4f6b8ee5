"""The signed ticket webhook against a Standard Webhooks receiver on 127.0.0.1 that dedupes on webhook-id."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from tests.tickets.fakes import Answer, FakeReceiver
from tests.tickets.support import SECRET, backlog_item
from tools.notify.signing import signature
from tools.tickets.base import TicketSinkError
from tools.tickets.webhook import WebhookTicketSink


def _now() -> datetime:
    return datetime.now(UTC)  # the reference verifier checks the timestamp against the real clock


def test_posts_a_signed_item_and_a_repeat_is_not_created(receiver: FakeReceiver) -> None:
    sink = WebhookTicketSink(receiver.base_url + "/hooks/backlog", SECRET, clock=_now)
    item = backlog_item()
    first = sink.file(item)
    second = sink.file(item)

    assert (first.sink, first.key, first.url, first.created) == (
        "webhook",
        f"backlog-{item.fingerprint}",
        None,
        True,
    )
    assert (second.key, second.created) == (first.key, False)  # the receiver answered 409
    request = receiver.requests[0]
    assert request.path == "/hooks/backlog"
    assert request.headers["webhook-id"] == f"backlog-{item.fingerprint}"
    assert request.headers["content-type"] == "application/json"
    timestamp = int(request.headers["webhook-timestamp"])
    assert request.headers["webhook-signature"] == signature(SECRET, first.key, timestamp, request.body)
    assert Webhook(SECRET).verify(request.body, request.headers) == json.loads(request.body)
    assert json.loads(request.body) == {"type": "backlog_item.filed", "item": item.as_dict()}


@pytest.mark.parametrize(("status", "transient"), [(401, False), (410, False), (429, True), (500, True)])
def test_refusals_are_errors_classified_by_status(
    receiver: FakeReceiver, status: int, transient: bool
) -> None:
    receiver.script(Answer(status, "no"))
    with pytest.raises(TicketSinkError) as caught:
        WebhookTicketSink(receiver.base_url, SECRET).file(backlog_item())
    assert (caught.value.status_code, caught.value.transient) == (status, transient)
    assert (
        str(caught.value)
        == f"webhook: posting the backlog item to the ticket webhook failed: HTTP {status}: no"
    )


def test_any_2xx_counts_as_created(receiver: FakeReceiver) -> None:
    receiver.script(Answer(200, ""))
    assert WebhookTicketSink(receiver.base_url, SECRET).file(backlog_item()).created is True


def test_refused_connection_is_transient_and_the_url_stays_out_of_repr(unused_port: int) -> None:
    url = f"http://127.0.0.1:{unused_port}/hook?token=url-credential"
    sink = WebhookTicketSink(url, SECRET)
    with pytest.raises(TicketSinkError, match="ConnectError") as caught:
        sink.file(backlog_item())
    assert caught.value.transient
    assert "url-credential" not in str(caught.value)
    assert "url-credential" not in repr(sink) and SECRET not in repr(sink)


def test_an_unusable_url_or_secret_fails_when_built() -> None:
    with pytest.raises(ValueError, match="base64"):
        WebhookTicketSink("https://example.test/hook", "whsec_not*base64!")
    with pytest.raises(ValueError, match="ticket webhook URL"):
        WebhookTicketSink("ftp://example.test/hook", SECRET)
