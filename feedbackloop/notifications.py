"""Wiring of the notification channels: the settings become a `ChannelConfig`, and that the notifiers."""

from __future__ import annotations

import logging

import httpx
from pydantic import SecretStr

from feedbackloop.settings import Settings
from tools.notify.channels.base import Notifier
from tools.notify.channels.registry import ChannelConfig, build_notifiers

logger = logging.getLogger(__name__)


def channel_config(settings: Settings) -> ChannelConfig:
    return ChannelConfig(
        slack_webhook_url=_secret(settings.slack_webhook_url),
        smtp_host=settings.smtp_host or None,
        smtp_port=settings.smtp_port,
        smtp_starttls=settings.smtp_starttls,
        smtp_username=settings.smtp_username or None,
        smtp_password=_secret(settings.smtp_password),
        smtp_from=settings.smtp_from or None,
        smtp_to=tuple(settings.smtp_to),
        pagerduty_routing_key=_secret(settings.pagerduty_routing_key),
        pagerduty_events_url=settings.pagerduty_events_url,
        alert_webhook_url=settings.alert_webhook_url or None,
        webhook_secret=_secret(settings.webhook_secret),
        notification_file=settings.notification_file,
        send_resolved_channels=frozenset(settings.send_resolved_channels),
    )


def notifiers_from_settings(settings: Settings, *, client: httpx.Client | None = None) -> dict[str, Notifier]:
    """The configured channels keyed by name ("slack", "email", "pagerduty", "webhook", "file").

    A channel without its required settings is absent; a half-configured one is logged, since that is rarely meant.
    """
    config = channel_config(settings)
    for name in config.incomplete_channels():
        logger.warning("notification channel %r is partly configured and therefore off", name)
    return build_notifiers(config, client=client)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() or None if value is not None else None
