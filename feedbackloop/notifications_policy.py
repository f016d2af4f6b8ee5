"""The notification policy of escalations, from settings: grouping, timings and which channels exist."""

from __future__ import annotations

from feedbackloop.settings import Settings
from tools.escalation.notifications import NotificationPolicy


def policy_from_settings(settings: Settings) -> NotificationPolicy:
    return NotificationPolicy(
        channels=frozenset(configured_channels(settings)),
        group_by=tuple(settings.alert_group_by),
        group_wait_seconds=settings.alert_group_wait_seconds,
        group_interval_seconds=settings.alert_group_interval_seconds,
        repeat_interval_seconds=settings.alert_repeat_interval_seconds,
        send_resolved=frozenset(settings.send_resolved_channels),
        dashboard_url=settings.public_url.rstrip("/") + "/dashboard" if settings.public_url else None,
    )


def configured_channels(settings: Settings) -> list[str]:
    """Channels whose settings are present (the notifier registry builds exactly these)."""
    channels = []
    if settings.slack_webhook_url is not None:
        channels.append("slack")
    if settings.smtp_host and settings.smtp_from and settings.smtp_to:
        channels.append("email")
    if settings.pagerduty_routing_key is not None:
        channels.append("pagerduty")
    if settings.alert_webhook_url and settings.webhook_secret is not None:
        channels.append("webhook")
    if settings.notification_file is not None:
        channels.append("file")
    return channels
