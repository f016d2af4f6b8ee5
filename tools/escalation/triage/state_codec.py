"""Plain-JSON forms of the triage context and incidents, for the escalation agent's checkpointed state (every
value in a checkpoint is JSON, so any saver loads it and schema changes stay backward compatible)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from tools.escalation.triage.model import EscalationFacts, Incident, TriageContext
from tools.retro.model import Signal

_MOMENTS = ("opened_at", "resolved_at", "change_from", "change_point")


def context_to_dict(context: TriageContext) -> dict[str, Any]:
    return {
        "at": context.at.isoformat(),
        "escalations": [_facts_to_dict(facts) for facts in context.escalations],
        "evidence": [signal.as_dict() for signal in context.evidence],
        "deployment_ids": dict(context.deployment_ids),
    }


def context_from_dict(data: dict[str, Any]) -> TriageContext:
    return TriageContext(
        at=datetime.fromisoformat(data["at"]),
        escalations=tuple(_facts_from_dict(item) for item in data["escalations"]),
        evidence=tuple(Signal.from_dict(item) for item in data["evidence"]),
        deployment_ids=dict(data["deployment_ids"]),
    )


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    return {"incident_id": incident.incident_id, "escalation_ids": list(incident.escalation_ids),
            "causes": dict(incident.causes)}  # fmt: skip


def incident_from_dict(data: dict[str, Any]) -> Incident:
    return Incident(data["incident_id"], tuple(data["escalation_ids"]), dict(data["causes"]))


def _facts_to_dict(facts: EscalationFacts) -> dict[str, Any]:
    data = asdict(facts)
    for key in _MOMENTS:
        data[key] = data[key].isoformat() if data[key] is not None else None
    return data


def _facts_from_dict(data: dict[str, Any]) -> EscalationFacts:
    values = dict(data)
    for key in _MOMENTS:
        values[key] = datetime.fromisoformat(values[key]) if values[key] is not None else None
    return EscalationFacts(**values)
