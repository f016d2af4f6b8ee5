"""Build the configured notifiers from a plain channel configuration (feedbackloop.notifications fills it from
the settings; tools/ never reads the settings itself).

A channel whose required values are unset is absent: Slack needs its webhook URL; e-mail a host, a sender and at
least one recipient; PagerDuty a routing key; the generic webhook a URL *and* the signing secret (never unsigned);
the file sink a path. A value that is set but unusable (a non-http URL, a secret that is not base64) raises
ValueError here, at start-up, rather than at the first alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from tools.notify.channels.base import Notifier
from tools.notify.channels.email import EmailNotifier
from tools.notify.channels.file import FileNotifier
from tools.notify.channels.pagerduty import DEFAULT_EVENTS_URL, PagerDutyNotifier
from tools.notify.channels.slack import SlackNotifier
from tools.notify.channels.webhook import WebhookNotifier

ChannelName = Literal["slack", "email", "pagerduty", "webhook", "file"]
CHANNEL_NAMES: tuple[ChannelName, ...] = ("slack", "email", "pagerduty", "webhook", "file")
DEFAULT_SEND_RESOLVED: frozenset[str] = frozenset({"slack", "pagerduty", "webhook", "file"})


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    slack_webhook_url: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    pagerduty_routing_key: str | None = field(default=None, repr=False)
    pagerduty_events_url: str = DEFAULT_EVENTS_URL
    alert_webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    notification_file: Path | None = None
    send_resolved_channels: frozenset[str] = DEFAULT_SEND_RESOLVED

    def incomplete_channels(self) -> list[str]:
        """Channels with some of their values set but not all: absent, and probably not on purpose."""
        partial = {
            "email": (self.smtp_host, self.smtp_from, self.smtp_to),
            "webhook": (self.alert_webhook_url, self.webhook_secret),
        }
        return [name for name, values in partial.items() if any(values) and not all(values)]


def build_notifiers(config: ChannelConfig, *, client: httpx.Client | None = None) -> dict[str, Notifier]:
    """The configured channels by name, in CHANNEL_NAMES order. `client` is shared by the HTTP channels."""
    resolved = config.send_resolved_channels
    notifiers: dict[str, Notifier] = {}
    if config.slack_webhook_url:
        notifiers["slack"] = SlackNotifier(
            config.slack_webhook_url, send_resolved="slack" in resolved, client=client
        )
    if config.smtp_host and config.smtp_from and config.smtp_to:
        notifiers["email"] = EmailNotifier(
            host=config.smtp_host,
            sender=config.smtp_from,
            recipients=config.smtp_to,
            port=config.smtp_port,
            starttls=config.smtp_starttls,
            username=config.smtp_username,
            password=config.smtp_password,
            send_resolved="email" in resolved,
        )
    if config.pagerduty_routing_key:
        notifiers["pagerduty"] = PagerDutyNotifier(
            config.pagerduty_routing_key,
            events_url=config.pagerduty_events_url,
            send_resolved="pagerduty" in resolved,
            client=client,
        )
    if config.alert_webhook_url and config.webhook_secret:
        notifiers["webhook"] = WebhookNotifier(
            config.alert_webhook_url,
            config.webhook_secret,
            send_resolved="webhook" in resolved,
            client=client,
        )
    if config.notification_file is not None:
        notifiers["file"] = FileNotifier(config.notification_file, send_resolved="file" in resolved)
    return notifiers
