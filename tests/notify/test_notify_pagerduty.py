"""PagerDuty Events API v2 against a local fake of /v2/enqueue: trigger then resolve on one dedup_key, the
severity mapping, the summary limit, and 202 / 400 / 429 / 5xx."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.notify.conftest import LocalHTTPServer, Reply
from tests.notify.support import firing, resolved
from tools.notify.channels.pagerduty import DEFAULT_EVENTS_URL, PagerDutyNotifier, dedup_key, pagerduty_event

NOW = datetime(2026, 3, 2, 6, 0, 30, tzinfo=UTC)
ACCEPTED = Reply(202, '{"status":"success","message":"Event processed","dedup_key":"x"}')


def _notifier(server: LocalHTTPServer) -> PagerDutyNotifier:
    return PagerDutyNotifier("R0UT1NGKEY", events_url=server.url("/v2/enqueue"))


def test_trigger_then_resolve_share_the_group_dedup_key(http_server: LocalHTTPServer) -> None:
    http_server.script(ACCEPTED, ACCEPTED)
    notifier = _notifier(http_server)

    assert notifier.send(firing(), now=NOW).delivered
    assert notifier.send(resolved(), now=NOW).status_code == 202

    trigger, resolve = (request.json() for request in http_server.received)
    assert http_server.received[0].path == "/v2/enqueue"
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "persona=podcast_network"
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UT1NGKEY"
    assert "payload" not in resolve  # PagerDuty ignores it for resolve

    payload = trigger["payload"]
    assert payload["summary"] == (
        "[FIRING:2] Error rate spiked for podcast_network (+1 more) — 2 escalation(s) firing for "
        "persona=podcast_network: error rate and sponsor reports."
    )
    assert (payload["source"], payload["severity"], payload["group"]) == (
        "feedbackloop",
        "critical",
        "podcast_network",
    )
    assert payload["timestamp"] == "2026-03-02T06:00:00+00:00"
    # the two alerts are on different metrics and rules: both are named
    assert payload["component"] == "error_rate,sponsor_reports_per_user"
    assert payload["class"] == "error_spike,value_drop"
    details = payload["custom_details"]
    assert details["group_labels"] == {"persona": "podcast_network"}
    assert [a["evidence"][0]["value"] for a in details["alerts"]] == [0.0521, 3.2]
    assert details["alerts"][0]["evidence"][0] == {
        "metric": "error_rate", "persona": "podcast_network", "value": 0.0521, "baseline": 0.0098,
        "change": 4.316, "p_value": 0.000123, "n": 1204,
    }  # fmt: skip
    assert trigger["links"] == [
        {"href": "http://127.0.0.1:8000/dashboard", "text": "dashboard"},
        {"href": "http://127.0.0.1:8000/v1/escalations", "text": "escalations"},
    ]


def test_component_group_and_class_come_from_the_labels() -> None:
    single = firing(alerts=firing().alerts[:1])
    payload = pagerduty_event(single, "k")["payload"]
    assert (payload["component"], payload["group"], payload["class"]) == (
        "error_rate",
        "podcast_network",
        "error_spike",
    )
    typed = replace(single.alerts[0], labels=single.alerts[0].labels | {"type": "error_spike_custom"})
    assert pagerduty_event(firing(alerts=[typed]), "k")["payload"]["class"] == "error_spike_custom"
    unlabelled = replace(single.alerts[0], labels={})
    payload = pagerduty_event(firing(alerts=[unlabelled], group_labels={}), "k")["payload"]
    assert not {"component", "group", "class"} & payload.keys()


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info")],
)
def test_severity_mapping(severity: str, expected: str) -> None:
    assert pagerduty_event(firing(severity=severity), "k")["payload"]["severity"] == expected


def test_summary_is_cut_to_1024_characters() -> None:
    summary = pagerduty_event(firing(summary="s" * 5000), "k")["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("s…")
    assert summary.startswith("[FIRING:2] Error rate spiked")


def test_a_long_group_key_becomes_a_stable_255_character_dedup_key() -> None:
    group_key = "persona=" + "p" * 400
    key = dedup_key(group_key)
    assert len(key) == 255 and key == dedup_key(group_key) and key.startswith("persona=ppp")
    assert key != dedup_key(group_key + "q")
    trigger = pagerduty_event(firing(group_key=group_key), "k")
    resolve = pagerduty_event(resolved(group_key=group_key), "k")
    assert trigger["dedup_key"] == resolve["dedup_key"] == key


def test_400_is_final(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(400, '{"status":"invalid event","message":"Event object is invalid"}'))
    attempt = _notifier(http_server).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable, attempt.delivered) == (400, False, False)
    assert attempt.error == 'HTTP 400: {"status":"invalid event","message":"Event object is invalid"}'


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_429_and_5xx_retry(http_server: LocalHTTPServer, status: int) -> None:
    http_server.script(Reply(status, "busy", {"Retry-After": "30"}))
    attempt = _notifier(http_server).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable, attempt.retry_after_seconds) == (status, True, 30.0)
    assert attempt.error == f"HTTP {status}: busy"


def test_retry_after_as_an_http_date(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(429, "slow down", {"Retry-After": "Mon, 02 Mar 2026 06:02:00 GMT"}))
    assert _notifier(http_server).send(firing(), now=NOW).retry_after_seconds == 90.0


def test_defaults_and_configuration_errors() -> None:
    assert (
        PagerDutyNotifier("k").events_url == DEFAULT_EVENTS_URL == "https://events.pagerduty.com/v2/enqueue"
    )
    assert "R0UT1NGKEY" not in repr(PagerDutyNotifier("R0UT1NGKEY"))
    with pytest.raises(ValueError, match="routing key is empty"):
        PagerDutyNotifier("")
    with pytest.raises(ValueError, match="PagerDuty events URL"):
        PagerDutyNotifier("k", events_url="events.pagerduty.com")
