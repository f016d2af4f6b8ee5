"""The JSON-lines file sink, the settings that configure channels, and the registry that builds exactly the
configured channels — then sends through each of them to real local servers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from feedbackloop.notifications import channel_config, notifiers_from_settings
from feedbackloop.settings import Settings
from tests.notify.conftest import LocalHTTPServer, LocalSMTPServer, Reply
from tests.notify.support import SECRET, firing, resolved
from tools.notify.channels import (
    EmailNotifier,
    FileNotifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
    wants,
)
from tools.notify.channels.registry import DEFAULT_SEND_RESOLVED, ChannelConfig, build_notifiers

NOW = datetime(2026, 3, 2, 6, 0, 30, tzinfo=UTC)


def test_file_sink_appends_one_json_line_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "notifications.jsonl"  # the directory is created on first use
    sink = FileNotifier(path)
    assert sink.send(firing(), now=NOW).delivered
    assert sink.send(resolved(), now=NOW).delivered

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {
        "channel": "file",
        "recorded_at": "2026-03-02T06:00:30+00:00",
        "notification": firing().as_dict(),
    }
    assert second["notification"]["status"] == "resolved"
    assert second["notification"]["alerts"][0]["resolved_at"] == "2026-03-03T09:00:00+00:00"


def test_file_sink_that_cannot_write_is_final(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    attempt = FileNotifier(blocker / "notifications.jsonl").send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable, attempt.status_code) == (False, False, None)
    assert attempt.error is not None and attempt.error.startswith(
        f"cannot append to {blocker}/notifications.jsonl"
    )


def test_nothing_configured_means_no_channels() -> None:
    assert notifiers_from_settings(Settings()) == {}


def test_registry_builds_exactly_the_configured_channels(tmp_path: Path) -> None:
    settings = Settings(
        slack_webhook_url="https://hooks.slack.com/services/T0/B0/XyZslackToken",
        smtp_host="smtp.example.test",
        smtp_from="feedbackloop@example.test",
        smtp_to="oncall@example.test, product@example.test",
        smtp_password="smtp-secret",
        pagerduty_routing_key="pd-routing-key",
        alert_webhook_url="https://receiver.example.test/hook",
        webhook_secret=SECRET,
        notification_file=tmp_path / "n.jsonl",
    )
    notifiers = notifiers_from_settings(settings)
    assert list(notifiers) == ["slack", "email", "pagerduty", "webhook", "file"]
    assert [type(n) for n in notifiers.values()] == [
        SlackNotifier, EmailNotifier, PagerDutyNotifier, WebhookNotifier, FileNotifier,
    ]  # fmt: skip
    assert all(name == notifier.name for name, notifier in notifiers.items())
    email = notifiers["email"]
    assert isinstance(email, EmailNotifier)
    assert (email.host, email.port, email.starttls, email.recipients, email.password) == (
        "smtp.example.test", 587, True, ("oncall@example.test", "product@example.test"), "smtp-secret",
    )  # fmt: skip
    pagerduty = notifiers["pagerduty"]
    assert isinstance(pagerduty, PagerDutyNotifier)
    assert pagerduty.events_url == "https://events.pagerduty.com/v2/enqueue"
    # send_resolved by default: every channel but e-mail
    assert {name: n.send_resolved for name, n in notifiers.items()} == {
        "slack": True, "email": False, "pagerduty": True, "webhook": True, "file": True,
    }  # fmt: skip
    assert [name for name, n in notifiers.items() if wants(n, resolved())] == [
        "slack",
        "pagerduty",
        "webhook",
        "file",
    ]
    assert all(wants(n, firing()) for n in notifiers.values())

    shown = repr(notifiers) + repr(channel_config(settings)) + json.dumps(settings.masked())
    for secret in ("XyZslackToken", "smtp-secret", "pd-routing-key", SECRET):
        assert secret not in shown
    masked = settings.masked()
    assert [masked[name] for name in ("slack_webhook_url", "smtp_password", "pagerduty_routing_key")] == [
        "****"
    ] * 3


def test_half_configured_channels_are_absent_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(smtp_host="smtp.example.test", alert_webhook_url="https://receiver.example.test/hook")
    with caplog.at_level(logging.WARNING, logger="feedbackloop.notifications"):
        assert notifiers_from_settings(settings) == {}  # no sender/recipients; a webhook is never unsigned
    assert sorted(record.getMessage() for record in caplog.records) == [
        "notification channel 'email' is partly configured and therefore off",
        "notification channel 'webhook' is partly configured and therefore off",
    ]


def test_lists_and_channel_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACKLOOP_SMTP_TO", "a@example.test, b@example.test,")
    monkeypatch.setenv("FEEDBACKLOOP_SEND_RESOLVED_CHANNELS", "email,slack")
    monkeypatch.setenv("FEEDBACKLOOP_SMTP_STARTTLS", "false")
    monkeypatch.setenv("FEEDBACKLOOP_SMTP_PORT", "2525")
    settings = Settings()
    assert settings.smtp_to == ["a@example.test", "b@example.test"]
    assert settings.send_resolved_channels == ["email", "slack"]
    config = channel_config(settings)
    assert (config.smtp_starttls, config.smtp_port, config.send_resolved_channels) == (
        False, 2525, frozenset({"email", "slack"}),
    )  # fmt: skip

    monkeypatch.setenv("FEEDBACKLOOP_SEND_RESOLVED_CHANNELS", "slack,teams")
    with pytest.raises(ValidationError, match="send_resolved_channels"):
        Settings()


def test_settings_default_for_send_resolved_matches_the_registry() -> None:
    assert (
        frozenset(Settings().send_resolved_channels)
        == DEFAULT_SEND_RESOLVED
        == ChannelConfig().send_resolved_channels
    )


def test_an_unusable_configured_value_fails_at_build_time() -> None:
    with pytest.raises(ValueError, match="PagerDuty events URL"):
        build_notifiers(ChannelConfig(pagerduty_routing_key="k", pagerduty_events_url="not a url"))


def test_every_built_channel_delivers_to_its_local_server(
    tmp_path: Path, http_server: LocalHTTPServer, smtp_server: LocalSMTPServer
) -> None:
    http_server.script(Reply(200, "ok"), Reply(202, "{}"), Reply(204, ""))
    config = ChannelConfig(
        slack_webhook_url=http_server.url("/slack"),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_starttls=False,
        smtp_from="feedbackloop@example.test",
        smtp_to=("oncall@example.test",),
        pagerduty_routing_key="k",
        pagerduty_events_url=http_server.url("/v2/enqueue"),
        alert_webhook_url=http_server.url("/hook"),
        webhook_secret=SECRET,
        notification_file=tmp_path / "n.jsonl",
    )
    now = datetime.now(UTC)
    attempts = {name: notifier.send(firing(), now=now) for name, notifier in build_notifiers(config).items()}

    assert {name: attempt.delivered for name, attempt in attempts.items()} == dict.fromkeys(
        ["slack", "email", "pagerduty", "webhook", "file"], True
    )
    assert [request.path for request in http_server.received] == ["/slack", "/v2/enqueue", "/hook"]
    assert http_server.received[1].json()["dedup_key"] == "persona=podcast_network"
    assert "webhook-signature" in http_server.received[2].headers
    assert len(smtp_server.recorder.messages) == 1
    assert (
        json.loads((tmp_path / "n.jsonl").read_text())["notification"]["group_key"]
        == "persona=podcast_network"
    )
