"""Slack incoming webhook: one Block Kit message per notification.

Layout: a header (status emoji + headline), the group's summary, the escalation agent's incident triage (summary,
probable causes with their evidence, owner, next steps), a context line (group labels, severity, time),
one section per alert (severity, persona, every evidence record formatted, description) and link buttons.
Slack refuses the whole message when a block breaks a limit, so the limits are enforced here: header text ≤ 150
characters, section text ≤ 3000, at most 50 blocks (the alerts that do not fit become "… and N more"), at most
25 buttons. Success is HTTP 200 with the body `ok`; Slack answers errors with 4xx and a short reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from prompts import render
from tools.notify.channels.base import excerpt, post_json, require_http_url
from tools.notify.delivery import REQUEST_TIMEOUT_SECONDS, Attempt
from tools.notify.message import Notification

MAX_BLOCKS = 50
MAX_INCIDENTS = 5  # a group spanning more incidents than this is rare; the rest stay in the webhook/API
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_BUTTONS = 25
MAX_BUTTON_TEXT_CHARS = 75
MAX_FALLBACK_CHARS = 3000  # Slack accepts 40 000; the fallback only shows in notifications and old clients


@dataclass(frozen=True, slots=True)
class SlackNotifier:
    webhook_url: str = field(repr=False)  # the URL is the credential
    send_resolved: bool = True
    name: str = "slack"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        require_http_url(self.webhook_url, "Slack webhook URL")

    def send(self, notification: Notification, *, now: datetime) -> Attempt:
        body = json.dumps(slack_message(notification), ensure_ascii=False).encode("utf-8")
        attempt, response = post_json(
            self.client, self.webhook_url, body, now=now, timeout_seconds=self.timeout_seconds
        )
        if response is not None and attempt.delivered and response.text.strip() != "ok":
            # Not Slack's success answer: do not guess, and do not repeat a post that may have landed.
            return Attempt(
                response.status_code,
                f"HTTP {response.status_code} without Slack's 'ok': {excerpt(response.text)}",
                verdict="final",
            )
        return attempt


def slack_message(notification: Notification) -> dict[str, Any]:
    """The webhook body: `text` (fallback for notifications) and `blocks`."""
    headline = render("notifications/slack_header.txt.j2", notification=notification).strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(headline, MAX_HEADER_CHARS), "emoji": True},
        }
    ]
    summary = render("notifications/slack_summary.md.j2", notification=notification).strip()
    if summary:
        blocks.append(_section(summary))
    for incident in notification.incidents[
        :MAX_INCIDENTS
    ]:  # the escalation agent's triage, when there is one
        blocks.append(_section(render("notifications/slack_incident.md.j2", incident=incident).strip()))
    context = render("notifications/slack_context.md.j2", notification=notification).strip()
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context, MAX_SECTION_CHARS)}]}
    )
    blocks.append({"type": "divider"})
    actions = _link_buttons(notification.links)

    room = MAX_BLOCKS - len(blocks) - (1 if actions else 0)
    shown = notification.alerts if len(notification.alerts) <= room else notification.alerts[: room - 1]
    for alert in shown:
        blocks.append(_section(render("notifications/slack_alert.md.j2", alert=alert).strip()))
    hidden = len(notification.alerts) - len(shown)
    if hidden:
        more = render("notifications/slack_more.md.j2", hidden=hidden).strip()
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    if actions:
        blocks.append(actions)
    fallback = render("notifications/slack_fallback.md.j2", notification=notification).strip()
    return {
        "text": _clip(fallback, MAX_FALLBACK_CHARS),
        "blocks": blocks,
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_CHARS)}}


def _link_buttons(links: dict[str, str]) -> dict[str, Any] | None:
    # Slack rejects the whole message for a button whose URL is not http(s), so such links are left out.
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": _clip(name, MAX_BUTTON_TEXT_CHARS)},
            "url": url,
            "action_id": f"link-{index}",
        }
        for index, (name, url) in enumerate(links.items())
        if url.startswith(("https://", "http://")) and len(url) <= 3000
    ][:MAX_BUTTONS]
    return {"type": "actions", "elements": buttons} if buttons else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
