"""Generic JSON webhook, signed with the Standard Webhooks scheme — never sent unsigned.

Body: `{"type": "escalation.group.firing" | "escalation.group.resolved", "timestamp", "data": <the notification>}`,
the same envelope as the survey webhooks (docs/surveys.md), so one receiver can take both. `webhook-id` is
derived from (group key, status, sent_at): a retried attempt carries the same id, so receivers can drop repeats;
`webhook-timestamp` is the attempt's time, because receivers reject signatures older than five minutes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tools.notify.channels.base import require_http_url
from tools.notify.delivery import REQUEST_TIMEOUT_SECONDS, Attempt, post_webhook
from tools.notify.message import Notification
from tools.notify.signing import secret_bytes


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    url: str
    secret: str = field(repr=False)
    send_resolved: bool = True
    name: str = "webhook"
    client: httpx.Client | None = field(default=None, repr=False, compare=False)
    timeout_seconds: float = REQUEST_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        require_http_url(self.url, "alert webhook URL")
        secret_bytes(self.secret)  # a secret the signer cannot use fails here, with its reason

    def send(self, notification: Notification, *, now: datetime) -> Attempt:
        payload = webhook_payload(notification)
        if self.client is not None:
            return post_webhook(self.client, self.url, webhook_id(notification), payload, self.secret, now)
        with httpx.Client(timeout=self.timeout_seconds) as client:
            return post_webhook(client, self.url, webhook_id(notification), payload, self.secret, now)


def webhook_payload(notification: Notification) -> dict[str, Any]:
    return {
        "type": f"escalation.group.{notification.status}",
        "timestamp": notification.sent_at.isoformat(),
        "data": notification.as_dict(),
    }


def webhook_id(notification: Notification) -> str:
    """Stable per (group, status, sent_at): the same notification retried keeps its id."""
    identity = "\x1f".join((notification.group_key, notification.status, notification.sent_at.isoformat()))
    return "msg_" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
