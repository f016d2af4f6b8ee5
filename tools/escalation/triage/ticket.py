"""The backlog ticket of an incident: due when one of its HIGH/CRITICAL escalations has been firing for at least
`after_minutes`; one per incident (the fingerprint is the incident's), so every later triage finds it filed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prompts import render
from tools.escalation.model import Escalation, EscalationSeverity, EscalationStatus
from tools.retro.report import cited_evidence, format_moment, ticket_markdown_escape

SEVERE = (EscalationSeverity.HIGH, EscalationSeverity.CRITICAL)
SOURCES = {
    "llm": "Triage: written by the LLM; its causes were checked against the evidence.",
    "rules": "Triage: written by the rules.",
}


@dataclass(frozen=True, slots=True)
class CauseView:
    title: str
    confidence: str
    explanation: str
    evidence_ids: list[str]


@dataclass(frozen=True, slots=True)
class EscalationView:
    id: str
    severity: str
    title: str
    firing_since: str


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
    item["body"] = incident_ticket_body(triage, due)
    return item


def _source(triage: Mapping[str, Any]) -> str:
    """One line: who wrote the triage; for rules that stood in for an LLM, why (the triage's warnings say)."""
    source = str(triage.get("triage", ""))
    line = SOURCES.get(source, f"Triage: {source or 'source not recorded'}.")
    warnings = [str(w) for w in triage.get("warnings") or ()]
    # Only an LLM that was asked leaves warnings on a rules triage (unreachable, unusable or ungrounded answer).
    if source == "rules" and warnings:
        line = f"Triage: written by the rules, standing in for the LLM ({'; '.join(warnings)})."
    return ticket_markdown_escape(line)


def _cause_view(cause: Mapping[str, Any]) -> CauseView:
    esc = ticket_markdown_escape
    return CauseView(
        title=esc(str(cause.get("title", ""))),
        confidence=esc(str(cause.get("confidence", ""))),
        explanation=esc(str(cause.get("explanation", ""))),
        evidence_ids=[esc(str(i)) for i in cause.get("evidence_ids") or ()],
    )


def _escalation_view(escalation: Escalation) -> EscalationView:
    esc = ticket_markdown_escape
    return EscalationView(
        id=esc(escalation.escalation_id),
        severity=esc(escalation.severity.value),
        title=esc(escalation.title),
        firing_since=esc(format_moment(escalation.firing_at)),
    )


def incident_ticket_body(triage: Mapping[str, Any], due: Sequence[Escalation]) -> str:
    """The ticket's markdown (prompts/incident_ticket_body.md.j2): the triage's summary, probable causes, owner and
    next steps, the escalations the ticket is for, and the evidence table of the records the causes cite. Every
    text is escaped: the triage may come from an LLM and quote survey comments. Sinks add their fingerprint."""
    esc = ticket_markdown_escape
    causes = list(triage.get("probable_causes") or ())
    cited_ids = [i for cause in causes for i in cause.get("evidence_ids") or ()]
    evidence, missing_evidence = cited_evidence(triage.get("evidence") or (), cited_ids, esc)
    owner = triage.get("owner")
    due_ids = {e.escalation_id for e in due}
    return render(
        "incident_ticket_body.md.j2",
        summary=esc(str(triage.get("summary") or "")),
        source=_source(triage),
        causes=[_cause_view(cause) for cause in causes],
        owner={"team": esc(str(owner["team"])), "channel": esc(str(owner["channel"]))} if owner else None,
        next_steps=[esc(str(step)) for step in triage.get("next_steps") or ()],
        escalations=[_escalation_view(e) for e in due],
        other_escalation_ids=[esc(str(i)) for i in triage.get("escalation_ids") or () if i not in due_ids],
        evidence=evidence,
        missing_evidence=missing_evidence,
        incident_id=esc(str(triage["incident_id"])),
    )
