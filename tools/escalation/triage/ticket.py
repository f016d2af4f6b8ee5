"""The backlog ticket of an incident: due when one of its HIGH/CRITICAL escalations has been firing for at least
`after_minutes`; one per incident (the fingerprint is the incident's), so every later triage finds it filed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from tools.escalation.model import Escalation, EscalationSeverity, EscalationStatus
from tools.retro.report import render_ticket_body

SEVERE = (EscalationSeverity.HIGH, EscalationSeverity.CRITICAL)


def ticket_fingerprint(incident_id: str) -> str:
    return hashlib.sha256(f"escalation-incident:{incident_id}".encode()).hexdigest()[:32]


def due_escalations(escalations: Sequence[Escalation], now: datetime, after_minutes: int) -> list[Escalation]:
    limit = now - timedelta(minutes=after_minutes)
    return [
        e
        for e in escalations
        if e.severity in SEVERE
        and e.status in (EscalationStatus.FIRING, EscalationStatus.ACKNOWLEDGED)
        and e.firing_at is not None
        and e.firing_at <= limit
    ]


def incident_ticket(triage: dict[str, Any], due: Sequence[Escalation]) -> dict[str, Any]:
    """The backlog item (the retro's item shape, so the same sinks and filing claim apply)."""
    worst = max(due, key=lambda e: (e.severity.rank, -e.opened_at.timestamp()))
    causes = triage.get("probable_causes") or []
    evidence_ids = list(dict.fromkeys(i for cause in causes for i in cause["evidence_ids"]))
    personas = sorted({p for e in due for p in e.affected_personas})
    item: dict[str, Any] = {
        "id": "T1",
        "title": f"[{worst.severity.value}] {worst.title}"[:200],
        "problem": triage["summary"],
        "proposal": "\n".join(f"- {step}" for step in triage.get("next_steps") or []),
        "acceptance_criteria": [f"escalation {e.escalation_id} is resolved" for e in due],
        "labels": ["escalation", worst.severity.value, *(f"persona:{p}" for p in personas)],
        "priority": {
            "score": 0.0,
            "reach": max((e.evidence[0].n for e in due if e.evidence), default=0),
            "impact": 3.0 if worst.severity == EscalationSeverity.CRITICAL else 2.0,
            "confidence": 1.0,
            "effort": 1.0,
        },
        "insight_ids": [],
        "evidence_ids": evidence_ids,
        "fingerprint": ticket_fingerprint(triage["incident_id"]),
    }
    item["body"] = render_ticket_body(item, [], triage.get("evidence") or [], triage["incident_id"])
    return item
