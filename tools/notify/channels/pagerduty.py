"""PagerDuty Events API v2: a firing group triggers (or updates) one alert, its resolution resolves it.

The dedup_key is the group key, so every trigger of one group lands on the same PagerDuty alert and the resolve
closes exactly that one. 202 is accepted; 400 means PagerDuty refused the event (final); 429 and 5xx retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from prompts import render
from tools.notify.channels.base import post_json, require_http_url
from tools.notify.delivery import REQUEST_TIMEOUT_SECONDS, Attempt
from tools.notify.message import Notification

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_DEDUP_KEY_CHARS = 255
MAX_SUMMARY_CHARS = 1024
SOURCE = "feedbackloop"
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


@dataclass(frozen=True, slots=True)
class PagerDutyNotifier:
    routing_key: str = field(repr=False)
    events_url: str = DEFAULT_EVENTS_URL
    send_resolved: bool = True
    name: str = "pagerduty"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        require_http_url(self.events_url, "PagerDuty events URL")
        if not self.routing_key:
            raise ValueError("the PagerDuty routing key is empty")

    def send(self, notification: Notification, *, now: datetime) -> Attempt:
        body = json.dumps(pagerduty_event(notification, self.routing_key), ensure_ascii=False).encode("utf-8")
        attempt, _ = post_json(
            self.client, self.events_url, body, now=now, timeout_seconds=self.timeout_seconds
        )
        return attempt


def pagerduty_event(notification: Notification, routing_key: str) -> dict[str, Any]:
    """A trigger for a firing group, a resolve (same dedup_key, no payload needed) for a resolved one."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if notification.status == "firing" else "resolve",
        "dedup_key": dedup_key(notification.group_key),
    }
    if notification.status != "firing":
        return event
    summary = " ".join(render("notifications/pagerduty_summary.txt.j2", notification=notification).split())
    event["payload"] = {
        "summary": summary if len(summary) <= MAX_SUMMARY_CHARS else summary[: MAX_SUMMARY_CHARS - 1] + "…",
        "source": SOURCE,
        "severity": PAGERDUTY_SEVERITY[notification.severity],
        "timestamp": notification.sent_at.isoformat(),
        "component": _label(notification, "metric"),
        "group": _label(notification, "persona"),
        "class": _label(notification, "type") or _label(notification, "rule"),
        "custom_details": {
            "summary": notification.summary,
            "group_labels": notification.group_labels,
            "alerts": notification.as_dict()["alerts"],
            "incidents": notification.as_dict()["incidents"],
        },
    }
    event["payload"] = {key: value for key, value in event["payload"].items() if value is not None}
    event["links"] = [{"href": url, "text": name} for name, url in notification.links.items()]
    return event


def dedup_key(group_key: str) -> str:
    """The group key itself when it fits in 255 characters, else a stable prefix plus its SHA-256."""
    if len(group_key) <= MAX_DEDUP_KEY_CHARS:
        return group_key
    digest = hashlib.sha256(group_key.encode("utf-8")).hexdigest()
    return f"{group_key[: MAX_DEDUP_KEY_CHARS - len(digest) - 1]}:{digest}"


def _label(notification: Notification, name: str) -> str | None:
    """A group label, else the alerts' values of that label (sorted, comma-joined when they differ)."""
    if name in notification.group_labels:
        return notification.group_labels[name]
    values = sorted({alert.labels[name] for alert in notification.alerts if alert.labels.get(name)})
    return ",".join(values) or None
