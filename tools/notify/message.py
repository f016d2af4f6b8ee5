"""What a notification says, independent of the channel that carries it (Slack, e-mail, PagerDuty, webhook, file).

One notification carries one alert group's current state (Alertmanager semantics): every escalation of the group
with its evidence, so the receiver never has to piece a picture together from several messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

GroupStatus = Literal["firing", "resolved"]
Severity = Literal["low", "medium", "high", "critical"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A number an escalation stands on, as a deterministic tool computed it."""

    metric: str
    persona: str | None
    value: float | None
    baseline: float | None
    change: float | None  # relative change (−0.25 = −25 %), None when the baseline is 0 or missing
    p_value: float | None
    n: int


@dataclass(frozen=True, slots=True)
class AlertLine:
    escalation_id: str
    fingerprint: str
    status: str  # firing | resolved | acknowledged
    severity: Severity
    title: str
    description: str
    labels: dict[str, str]
    evidence: list[Evidence] = field(default_factory=list)
    opened_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CauseLine:
    """A probable cause as the escalation agent wrote it, with the evidence it cites (ids and their details)."""

    title: str
    confidence: str  # high | medium | low
    evidence_ids: list[str]
    evidence: list[str]  # each cited record's detail, written by a deterministic tool


@dataclass(frozen=True, slots=True)
class IncidentBrief:
    """The escalation agent's triage of an incident some of the group's alerts belong to, as of sending.

    The check queues a notification before the agent triages what it found, so the brief is attached when the
    message is sent (each attempt reads the latest triage); `source` says whether the rules or an LLM wrote it.
    """

    incident_id: str
    source: str  # rules | llm
    summary: str
    probable_causes: list[CauseLine]
    owner_team: str
    owner_channel: str
    next_steps: list[str]
    escalation_ids: list[str]
    resolution_summary: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """The state of one alert group at `sent_at`. `group_key` is stable per group (PagerDuty's dedup_key)."""

    group_key: str
    status: GroupStatus  # firing while any alert of the group fires, resolved when none does
    severity: Severity  # the highest severity in the group
    title: str
    summary: str
    alerts: list[AlertLine]
    group_labels: dict[str, str]
    sent_at: datetime
    links: dict[str, str] = field(default_factory=dict)  # name → URL (dashboard, escalation API)
    incidents: list[IncidentBrief] = field(default_factory=list)  # the escalation agent's triage, when sent

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sent_at"] = self.sent_at.isoformat()
        for alert in data["alerts"]:
            for key in ("opened_at", "resolved_at"):
                alert[key] = alert[key].isoformat() if alert[key] else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """The inverse of as_dict (an outbox payload back into what a notifier sends)."""
        alerts = [
            AlertLine(**(dict(a) | {
                "evidence": [Evidence(**e) for e in a["evidence"]],
                "opened_at": datetime.fromisoformat(a["opened_at"]) if a["opened_at"] else None,
                "resolved_at": datetime.fromisoformat(a["resolved_at"]) if a["resolved_at"] else None,
            }))
            for a in data["alerts"]
        ]  # fmt: skip
        incidents = [
            IncidentBrief(**(dict(i) | {"probable_causes": [CauseLine(**c) for c in i["probable_causes"]]}))
            for i in data.get("incidents", [])  # payloads queued before incidents were attached have none
        ]
        return cls(**(dict(data) | {
            "alerts": alerts, "incidents": incidents, "sent_at": datetime.fromisoformat(data["sent_at"]),
        }))  # fmt: skip
