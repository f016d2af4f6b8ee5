"""Slack incoming webhook against a local HTTP server: Block Kit shape and limits (checked by slack_sdk's own
block models), Slack's "ok" answer, and every failure turned into the right Attempt."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from tests.notify.conftest import LocalHTTPServer, Reply
from tests.notify.support import firing, many_alerts, resolved
from tools.notify.channels.slack import MAX_BLOCKS, SlackNotifier, slack_message

NOW = datetime(2026, 3, 2, 6, 0, 30, tzinfo=UTC)


def _valid_blocks(blocks: list[dict[str, Any]]) -> list[str]:
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises on any Block Kit limit Slack would reject
    return [block["type"] for block in blocks]


def test_firing_group_is_posted_as_block_kit_with_every_evidence_number(http_server: LocalHTTPServer) -> None:
    attempt = SlackNotifier(http_server.url("/services/T0/B0/x")).send(firing(), now=NOW)

    assert attempt.delivered and attempt.status_code == 200 and attempt.error is None
    [request] = http_server.received
    assert request.path == "/services/T0/B0/x"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert _valid_blocks(body["blocks"]) == [
        "header", "section", "context", "divider", "section", "section", "actions",
    ]  # fmt: skip
    header, summary, context, _, spike, drop, actions = body["blocks"]
    assert (
        header["text"]["text"]
        == ":rotating_light: [FIRING:2] Error rate spiked for podcast_network (+1 more)"
    )
    assert summary["text"]["text"].startswith("2 escalation(s) firing for persona=podcast_network")
    assert context["elements"][0]["text"] == (
        "persona: `podcast_network` · severity: *critical* · 2026-03-02 06:00 UTC"
    )
    assert spike["text"]["text"].splitlines() == [
        ":red_circle: *Error rate spiked for podcast_network*",
        "*CRITICAL* · firing · persona `podcast_network` · since 2026-03-01 18:00 UTC",
        "• error_rate for podcast_network: 0.0521 vs 0.0098 baseline (+431.6%), p = 0.00012, n = 1,204",
        "Errors per session rose after v1.4.0 was deployed.",
    ]
    assert (
        "• sponsor_reports_per_user for podcast_network: 3.2 vs 4.8 baseline (-33.3%), p = 0.0031, n = 385"
        in drop["text"]["text"]
    )
    assert drop["text"]["text"].startswith(":large_orange_circle: *Sponsor reports")
    assert [(b["text"]["text"], b["url"]) for b in actions["elements"]] == [
        ("dashboard", "http://127.0.0.1:8000/dashboard"),
        ("escalations", "http://127.0.0.1:8000/v1/escalations"),
    ]
    assert body["text"] == (
        "[FIRING:2] Error rate spiked for podcast_network (+1 more)\n"
        "2 escalation(s) firing for persona=podcast_network: error rate and sponsor reports."
    )


def test_resolved_group_says_so_and_keeps_the_alerts() -> None:
    message = slack_message(resolved())
    assert message["blocks"][0]["text"]["text"] == (
        ":white_check_mark: [RESOLVED] escalations for persona=podcast_network"
    )
    alert_texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"][1:]
    assert all("· resolved" in text for text in alert_texts)


def test_text_from_elsewhere_cannot_ping_channels_or_forge_links() -> None:
    notification = firing(
        title="[FIRING:1] <!here>", summary="Ask <!channel> & see <https://evil.example|this>"
    )
    message = slack_message(notification)
    summary = message["blocks"][1]["text"]["text"]
    assert summary == "Ask &lt;!channel&gt; &amp; see &lt;https://evil.example|this&gt;"
    assert message["text"] == f"[FIRING:1] &lt;!here&gt;\n{summary}"
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: [FIRING:1] <!here>"  # plain_text: inert


def test_limits_hold_for_huge_groups_and_long_texts() -> None:
    message = slack_message(many_alerts(120, description_chars=5000))
    blocks = message["blocks"]
    types = _valid_blocks(blocks)
    assert len(blocks) == MAX_BLOCKS
    assert types[-1] == "actions" and types[-2] == "context"
    shown = [b for b in blocks if b["type"] == "section"][1:]  # after the summary
    assert len(shown) == MAX_BLOCKS - 6  # header, summary, context, divider, "… and N more", actions
    assert all(len(b["text"]["text"]) == 3000 and b["text"]["text"].endswith("…") for b in shown)
    hidden = 120 - len(shown)
    assert blocks[-2]["elements"][0]["text"].startswith(f"… and {hidden} more alerts in this group")

    long_title = slack_message(firing(title="T" * 400))["blocks"][0]["text"]["text"]
    assert len(long_title) == 150 and long_title.endswith("…")


def test_no_links_means_no_actions_block_and_odd_links_are_left_out() -> None:
    assert "actions" not in [b["type"] for b in slack_message(firing(links={}))["blocks"]]
    blocks = slack_message(firing(links={"runbook": "file:///etc/passwd", "dash": "https://x.example/d"}))[
        "blocks"
    ]
    assert [e["text"]["text"] for e in blocks[-1]["elements"]] == ["dash"]


def test_429_with_retry_after_is_retryable_and_keeps_the_delay(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(429, "rate_limited", {"Retry-After": "7"}))
    attempt = SlackNotifier(http_server.url()).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable, attempt.delivered) == (429, True, False)
    assert attempt.retry_after_seconds == 7.0
    assert attempt.error == "HTTP 429: rate_limited"


def test_400_is_final_with_status_and_a_bounded_excerpt_of_slack_answer(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(400, "invalid_blocks " + "y" * 5000))
    attempt = SlackNotifier(http_server.url()).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable, attempt.delivered) == (400, False, False)
    assert attempt.error is not None
    assert attempt.error.startswith("HTTP 400: invalid_blocks yyy") and len(attempt.error) <= 500


def test_500_is_retryable(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(500, "internal"))
    attempt = SlackNotifier(http_server.url()).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable, attempt.error) == (500, True, "HTTP 500: internal")


def test_200_without_ok_is_final_not_delivered(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(200, "<html>captive portal</html>"))
    attempt = SlackNotifier(http_server.url()).send(firing(), now=NOW)
    assert (attempt.delivered, attempt.retryable) == (False, False)
    assert attempt.error == "HTTP 200 without Slack's 'ok': <html>captive portal</html>"


def test_connection_refused_is_retryable(unused_port: int) -> None:
    attempt = SlackNotifier(f"http://127.0.0.1:{unused_port}/hook").send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable) == (None, True)
    assert attempt.error is not None and attempt.error.startswith("ConnectError")


def test_timeout_is_retryable(http_server: LocalHTTPServer) -> None:
    http_server.script(Reply(200, "ok", delay_seconds=1.0))
    attempt = SlackNotifier(http_server.url(), timeout_seconds=0.2).send(firing(), now=NOW)
    assert (attempt.status_code, attempt.retryable) == (None, True)
    assert attempt.error is not None and attempt.error.startswith("ReadTimeout")


def test_a_misconfigured_url_fails_at_build_time_without_echoing_the_secret_url() -> None:
    with pytest.raises(ValueError, match="Slack webhook URL must be an http") as error:
        SlackNotifier("hooks.slack.com/services/T0/B0/secret")
    assert "secret" not in str(error.value)
    assert "secret" not in repr(SlackNotifier("https://hooks.slack.com/services/T0/B0/secret"))
