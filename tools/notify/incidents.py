"""Attach the escalation agent's triage to a notification when it is sent.

The check queues a group's notification before the agent has triaged what the check found (and a group's later
re-sends outlive any one triage), so the incident brief is read at send time: the summary, probable causes with
the evidence they cite, the owner and next steps of every incident holding one of the group's alerts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import RowMapping

from store.database import Database
from store.repositories import incidents as incident_sql
from tools.notify.message import CauseLine, IncidentBrief, Notification


def with_incidents(database: Database, notification: Notification) -> Notification:
    """The notification with the briefs of the incidents its alerts belong to (unchanged when none)."""
    escalation_ids = [alert.escalation_id for alert in notification.alerts]
    with database.read() as connection:
        rows = incident_sql.incidents_of(connection, escalation_ids)
    if not rows:
        return notification
    return replace(notification, incidents=[incident_brief(row) for row in rows])


def incident_brief(row: RowMapping | Mapping[str, Any]) -> IncidentBrief:
    """A stored incident (its triage JSON, `feedbackloop escalations triage --format json`) as a brief."""
    triage = row["triage"]
    details = {record.get("id"): record.get("detail", "") for record in triage.get("evidence", [])}
    causes = [
        CauseLine(
            title=cause["title"],
            confidence=cause["confidence"],
            evidence_ids=list(cause["evidence_ids"]),
            evidence=[f"{i}: {details[i]}" for i in cause["evidence_ids"] if details.get(i)],
        )
        for cause in triage.get("probable_causes", [])
    ]
    owner = triage.get("owner", {})
    return IncidentBrief(
        incident_id=row["id"],
        source=row["source"],
        summary=triage.get("summary", ""),
        probable_causes=causes,
        owner_team=owner.get("team", ""),
        owner_channel=owner.get("channel", ""),
        next_steps=list(triage.get("next_steps", [])),
        escalation_ids=list(row["escalation_ids"]),
        resolution_summary=row["resolution_summary"],
    )
