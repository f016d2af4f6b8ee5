"""Notifications the channel tests send: shaped like the escalation engine's (tools/escalation/notifications.py)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

from tools.notify.message import AlertLine, Evidence, Notification

SECRET = "whsec_" + base64.b64encode(b"feedbackloop-notify-secret-32by!").decode()
SENT_AT = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)

ERROR_SPIKE = AlertLine(
    escalation_id="esc_error_spike",
    fingerprint="fp-error-spike",
    status="firing",
    severity="critical",
    title="Error rate spiked for podcast_network",
    description="Errors per session rose after v1.4.0 was deployed.",
    labels={"rule": "error_spike", "persona": "podcast_network", "metric": "error_rate"},
    evidence=[Evidence("error_rate", "podcast_network", 0.0521, 0.0098, 4.316, 0.000123, 1204)],
    opened_at=datetime(2026, 3, 1, 18, 0, tzinfo=UTC),
)
VALUE_DROP = AlertLine(
    escalation_id="esc_value_drop",
    fingerprint="fp-value-drop",
    status="firing",
    severity="high",
    title="Sponsor reports per user dropped for podcast_network",
    description="Fewer sponsor reports are sent per active podcaster.",
    labels={"rule": "value_drop", "persona": "podcast_network", "metric": "sponsor_reports_per_user"},
    evidence=[Evidence("sponsor_reports_per_user", "podcast_network", 3.2, 4.8, -0.33333, 0.0031, 385)],
    opened_at=datetime(2026, 3, 1, 20, 0, tzinfo=UTC),
)


def firing(**changes: object) -> Notification:
    notification = Notification(
        group_key="persona=podcast_network",
        status="firing",
        severity="critical",
        title="[FIRING:2] Error rate spiked for podcast_network (+1 more)",
        summary="2 escalation(s) firing for persona=podcast_network: error rate and sponsor reports.",
        alerts=[ERROR_SPIKE, VALUE_DROP],
        group_labels={"persona": "podcast_network"},
        sent_at=SENT_AT,
        links={
            "dashboard": "http://127.0.0.1:8000/dashboard",
            "escalations": "http://127.0.0.1:8000/v1/escalations",
        },
    )
    return replace(notification, **changes)  # type: ignore[arg-type]


def resolved(**changes: object) -> Notification:
    alerts = [
        replace(alert, status="resolved", resolved_at=datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
        for alert in (ERROR_SPIKE, VALUE_DROP)
    ]
    base = firing(
        status="resolved",
        title="[RESOLVED] escalations for persona=podcast_network",
        summary="Every escalation for persona=podcast_network has resolved.",
        alerts=alerts,
        sent_at=datetime(2026, 3, 3, 9, 5, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def many_alerts(count: int, description_chars: int = 0) -> Notification:
    alerts = [
        replace(
            ERROR_SPIKE,
            escalation_id=f"esc_{index}",
            fingerprint=f"fp-{index}",
            title=f"Alert number {index}",
            description="x" * description_chars,
        )
        for index in range(count)
    ]
    return firing(alerts=alerts, title=f"[FIRING:{count}] many alerts")
