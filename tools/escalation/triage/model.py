"""What a triage is made of: owners and routes (settings), incidents (escalations grouped deterministically) and
the triage written over an incident. `TriageDraft` is pydantic because it is also the LLM's output schema; the
rules triage fills the same schema, labelled `triage: rules`.

Evidence records are `tools.retro.model.Signal`s with ids E1, E2, …: the same record type, number formatting and
number grounding as the retro agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.retro.model import Signal

TriageSource = Literal["rules", "llm"]
Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True, slots=True)
class Owner:
    team: str
    channel: str

    def as_dict(self) -> dict[str, str]:
        return {"team": self.team, "channel": self.channel}


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the routing table: every field that is set must match (metric, persona, escalation type)."""

    team: str
    channel: str
    metric: str | None = None
    persona: str | None = None
    type: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        unknown = sorted(set(data) - {"team", "channel", "metric", "persona", "type"})
        if unknown or not isinstance(data.get("team"), str) or not isinstance(data.get("channel"), str):
            raise ValueError(
                "escalation_routes: each route is {team, channel, metric?, persona?, type?}"
                + (f"; unknown field {unknown[0]!r}" if unknown else "; team and channel are required")
            )
        return cls(**data)


@dataclass(frozen=True, slots=True)
class TriageSettings:
    lookback_hours: float = 48.0  # a deployment this long before a change point can explain it
    routes: tuple[Route, ...] = ()
    default_owner: Owner = Owner("on-call", "#incidents")
    comments_per_persona: int = 5
    survey_days: int = 7


@dataclass(frozen=True, slots=True)
class EscalationFacts:
    """One escalation as triage sees it: its evidence id and when its change started."""

    escalation_id: str
    evidence_id: str
    persona: str
    metric: str
    type: str
    severity: str
    status: str
    title: str
    opened_at: datetime
    resolved_at: datetime | None
    change_from: datetime  # the change began in [change_from, change_point]: the onset day, or the opening
    change_point: datetime
    change_point_source: str  # "metric series" (its daily series), "persona" (a same-persona one's), "opened"


@dataclass(frozen=True, slots=True)
class TriageContext:
    at: datetime
    escalations: tuple[EscalationFacts, ...]
    evidence: tuple[Signal, ...]
    deployment_ids: dict[str, str] = field(default_factory=dict)  # evidence id → version

    def signal(self, evidence_id: str) -> Signal | None:
        return next((s for s in self.evidence if s.id == evidence_id), None)


@dataclass(frozen=True, slots=True)
class Incident:
    """Escalations that belong together, and the deployment each points to (evidence id or None)."""

    incident_id: str
    escalation_ids: tuple[str, ...]
    causes: dict[str, str | None]  # escalation id → evidence id of its probable deployment


class ProbableCause(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=200)
    explanation: str = Field(max_length=1200)
    evidence_ids: list[str] = Field(min_length=1)
    confidence: Confidence


class TriageDraft(BaseModel):
    """The triage's output schema (LLM and rules alike)."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(max_length=1200)
    probable_causes: list[ProbableCause] = Field(default_factory=list, max_length=5)
    next_steps: list[str] = Field(default_factory=list, max_length=8)


@dataclass(frozen=True, slots=True)
class Triage:
    incident: Incident
    draft: TriageDraft
    owner: Owner
    source: TriageSource
    evidence: tuple[Signal, ...]
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident.incident_id,
            "escalation_ids": list(self.incident.escalation_ids),
            "triage": self.source,
            "summary": self.draft.summary,
            "probable_causes": [cause.model_dump() for cause in self.draft.probable_causes],
            "owner": self.owner.as_dict(),
            "next_steps": list(self.draft.next_steps),
            "evidence": [signal.as_dict() for signal in self.evidence],
            "warnings": list(self.warnings),
        }
