"""What a retro is made of: signals (deterministic findings with evidence ids), the synthesis the LLM or the rules
write over them (insights and backlog drafts, pydantic because it is the LLM's output schema), and the prioritised
backlog items that are filed as tickets.

The LLM writes words, tools write numbers: every number a synthesis may state is a value of a signal it cites
(`Signal.citable_numbers`), and the grounding validator (tools.retro.grounding) holds it to that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SignalKind = Literal[
    "metric_change",  # a metric per persona vs the baseline window (tools.metrics + tools.stats)
    "kpi_change",  # a KPI per persona vs the baseline window (tools.kpis)
    "experiment_result",  # an experiment that concluded or reached power (tools.experiments)
    "escalation",  # an escalation opened, firing or resolved in the window (tools.escalation)
    "survey_shift",  # NPS / CSAT / rating answers vs the baseline window (tools.surveys)
    "survey_theme",  # a recurring theme in redacted free-text answers (text only: never enough for a ticket)
    "deployment",  # a deployment in the window, with the changes that started within its bake window
]
QUANTITATIVE_KINDS: frozenset[str] = frozenset(
    {"metric_change", "kpi_change", "experiment_result", "escalation", "survey_shift"}
)
Direction = Literal["improved", "worsened", "neutral"]
Impact = Literal["High", "Medium", "Low"]
JourneyStage = Literal[
    "acquisition", "onboarding", "first_value", "adoption", "renewal", "support", "advocacy"
]
CanvasBlock = Literal[
    "customer_segments",
    "value_propositions",
    "channels",
    "customer_relationships",
    "revenue_streams",
    "key_resources",
    "key_activities",
    "key_partnerships",
    "cost_structure",
]
RetroKind = Literal["sprint", "deployment"]
Synthesiser = Literal["llm", "rules"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One deterministic finding. `id` is what insights cite ("S1", "S2", … in detection order).

    `value`/`baseline` are in `unit`; `change` is relative (0.25 = +25%) unless `unit` is a difference unit
    named in `detail`; `p_value` comes from tools.stats (None when no test applies). `affected_users` is the
    reach used by prioritisation. `facts` holds any other number the signal stands on (interval bounds, lift,
    counts), by name, so a synthesis can cite it. `attributed_to` names a deployment version when the change
    started within that deployment's bake window. `text` carries redacted free text (survey themes) and is
    untrusted: it is shown to the LLM only inside the fenced data block.
    """

    id: str
    kind: str  # SignalKind
    metric: str | None
    persona: str | None
    value: float | None
    baseline: float | None
    change: float | None
    p_value: float | None
    detail: str
    unit: str | None = None
    n: int | None = None
    baseline_n: int | None = None
    direction: str | None = None  # Direction
    significant: bool = False
    affected_users: int | None = None
    facts: dict[str, float | int | str] = field(default_factory=dict)
    attributed_to: str | None = None
    text: tuple[str, ...] = ()
    subject: str | None = None  # the experiment key, escalation id or deployment version the signal is about

    @property
    def quantitative(self) -> bool:
        return self.kind in QUANTITATIVE_KINDS and (self.value is not None or self.change is not None)

    def citable_numbers(self) -> list[float]:
        """Every number a synthesis citing this signal may state (before rounding/percent formatting)."""
        numbers = [x for x in (self.value, self.baseline, self.change, self.p_value) if x is not None]
        numbers += [float(x) for x in (self.n, self.baseline_n, self.affected_users) if x is not None]
        numbers += [
            float(x) for x in self.facts.values() if isinstance(x, int | float) and not isinstance(x, bool)
        ]
        return numbers

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["text"] = list(self.text)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signal:
        values = dict(data)
        values["text"] = tuple(values.get("text") or ())
        values["facts"] = dict(values.get("facts") or {})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class TheoryMapping:
    """Where a signal sits in journey theory (tools.journey): stage, canvas block, principles, interventions."""

    signal_id: str
    journey_stage: str  # JourneyStage
    canvas_block: str  # CanvasBlock
    principles: tuple[str, ...]
    interventions: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "principles": list(self.principles),
            "interventions": list(self.interventions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TheoryMapping:
        return cls(
            signal_id=data["signal_id"],
            journey_stage=data["journey_stage"],
            canvas_block=data["canvas_block"],
            principles=tuple(data["principles"]),
            interventions=tuple(data["interventions"]),
        )


# ---- the synthesis: the LLM's structured output schema, also what the rules synthesiser produces ----


class InsightDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="I1, I2, ... unique within this synthesis")
    title: str = Field(min_length=3, max_length=160)
    summary: str = Field(min_length=3, max_length=1200)
    journey_stage: JourneyStage
    canvas_block: CanvasBlock
    principles: list[str] = Field(default_factory=list, max_length=5)
    impact: Impact
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_ids: list[str] = Field(min_length=1, description="ids of the signals this insight stands on")
    recommendations: list[str] = Field(default_factory=list, max_length=5)


class BacklogDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=160)
    problem: str = Field(min_length=3, max_length=1200)
    proposal: str = Field(min_length=3, max_length=1200)
    acceptance_criteria: list[str] = Field(min_length=1, max_length=6)
    insight_ids: list[str] = Field(min_length=1)


class Synthesis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    insights: list[InsightDraft] = Field(default_factory=list, max_length=12)
    backlog_items: list[BacklogDraft] = Field(default_factory=list, max_length=10)


# ---- after grounding and prioritisation ----


@dataclass(frozen=True, slots=True)
class Priority:
    """RICE: score = reach × impact × confidence / effort (reach in affected users, effort in person-weeks)."""

    score: float
    reach: int
    impact: float
    confidence: float
    effort: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TicketRef:
    """Where a backlog item was filed. `created` is False when the sink already held its fingerprint."""

    sink: str
    key: str  # issue number, Jira key, line number, file name …
    url: str | None
    created: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BacklogItem:
    """A prioritised, grounded backlog item ready to file. `fingerprint` is stable across retros for the same
    problem (signal kind, metric, persona, journey stage), so an open item is not filed twice."""

    id: str
    title: str
    problem: str
    proposal: str
    acceptance_criteria: tuple[str, ...]
    labels: tuple[str, ...]
    priority: Priority
    insight_ids: tuple[str, ...]
    evidence_ids: tuple[str, ...]
    fingerprint: str
    body: str = ""  # rendered markdown (prompts/ticket_body.md.j2) with the evidence table
    tickets: tuple[TicketRef, ...] = ()
    duplicate_of: str | None = None  # an open backlog item with the same fingerprint (then nothing is filed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "problem": self.problem,
            "proposal": self.proposal,
            "acceptance_criteria": list(self.acceptance_criteria),
            "body": self.body,
            "labels": list(self.labels),
            "priority": self.priority.as_dict(),
            "insight_ids": list(self.insight_ids),
            "evidence_ids": list(self.evidence_ids),
            "fingerprint": self.fingerprint,
            "ticket": self.tickets[0].as_dict() if self.tickets else None,
            "tickets": [t.as_dict() for t in self.tickets],
            "duplicate_of": self.duplicate_of,
        }


@dataclass(frozen=True, slots=True)
class GroundingIssue:
    """Why part of a synthesis was rejected: `path` is e.g. "insights[2].summary" or "backlog_items[0]"."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class RetroWindow:
    kind: str  # RetroKind
    start: datetime
    end: datetime
    baseline_start: datetime
    baseline_end: datetime
    sprint_id: str | None = None
    version: str | None = None  # deployment retros: the version deployed
    deployed_at: datetime | None = None
