"""Notification channels behind one interface: `Notifier.send(notification, now=…) -> Attempt`.

Slack (incoming webhook, Block Kit), e-mail (SMTP), PagerDuty (Events API v2), a generic signed webhook
(Standard Webhooks) and a JSON-lines file sink. Every outcome is an `Attempt`; no channel raises for a network,
HTTP or SMTP failure, so the outbox decides retries the same way for all of them.
"""

from tools.notify.channels.base import Notifier, wants
from tools.notify.channels.email import EmailNotifier
from tools.notify.channels.file import FileNotifier
from tools.notify.channels.pagerduty import PagerDutyNotifier
from tools.notify.channels.registry import CHANNEL_NAMES, ChannelConfig, build_notifiers
from tools.notify.channels.slack import SlackNotifier
from tools.notify.channels.webhook import WebhookNotifier

__all__ = [
    "CHANNEL_NAMES",
    "ChannelConfig",
    "EmailNotifier",
    "FileNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "wants",
]
