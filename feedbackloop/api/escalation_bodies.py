"""Request and response shapes of the escalation routes, how bodies are read, and how escalation errors become
HTTP answers.

Bodies are read like the survey bodies (limited to `max_batch_bytes`, gzip allowed, strict JSON: NaN is a 400),
refused when a database could not store them, then validated by a pydantic model (or, for rules, by the rule
itself); a body of the wrong shape is a 422 naming the field. Query and path parameters answer the same way
(`EscalationRoute`). Escalation errors map once, here: input 422, state conflict 409, unknown id 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from feedbackloop.api import domain_doors
from feedbackloop.worker import EARLIEST_MOMENT, LATEST_MOMENT
from tools.escalation.model import (
    COMPARISONS,
    EscalationInputError,
    EscalationNotFoundError,
    EscalationSeverity,
    EscalationStateError,
    EscalationStatus,
    EscalationType,
)

Body = TypeVar("Body", bound=BaseModel)

# Patterns of the pydantic (Rust) regex engine, where `$` is the end of the text. Rule ids as the model allows
# them; escalation and silence ids are `esc_…` / `sil_…` today, but any short id without separators is looked up.
RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
RECORD_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
NO_NUL = r"^[^\x00]*$"  # PostgreSQL cannot compare text holding NUL: refused as input, never a 500
MatchOperator = Literal["=", "!=", "=~", "!~"]
# tools.escalation.model.COMPARISONS, spelled out for the type checker (a test keeps them equal).
Comparison = Literal[
    "less_than", "greater_than", "drop_pct_greater_than", "rise_pct_greater_than",
    "significant_drop", "significant_rise",
]  # fmt: skip


# ---- requests -----------------------------------------------------------------------------------------------


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=255, pattern=NO_NUL, description="who takes the escalation")


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolved_by: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    resolution_notes: str = Field(
        "", max_length=10_000, description="what was done (at most 10,000 characters)"
    )


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str | None = Field(
        None,
        description="evaluate as of this moment, ISO 8601 with a UTC offset (default now): replays history",
    )
    days: int = Field(7, ge=1, le=365, description="period of rules whose condition has no period_days")


class MatcherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=100, pattern=NO_NUL, description="rule, persona or metric")
    operator: MatchOperator = Field("=", description="= and != compare text; =~ and !~ match a whole regex")
    value: str = Field(max_length=500, pattern=NO_NUL)


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[MatcherIn] = Field(
        min_length=1, max_length=50, description="a silence mutes an escalation when every matcher matches"
    )
    starts_at: str | None = Field(None, description="ISO 8601 with a UTC offset (default now)")
    ends_at: str = Field(description="ISO 8601 with a UTC offset, after starts_at")
    created_by: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    comment: str = Field("", max_length=2000)


# ---- responses ----------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str
    message: str = Field(description="starts with the offending field, e.g. `threshold: must be a finite …`")
    field: str | None = Field(None, description="the offending input (422 and 409)")


class ConditionOut(BaseModel):
    metric: str = Field(description="a metric (error_rate, support_incidents, …) or KPI (nps, ltv, …)")
    period_days: int | None = Field(None, description="null: the check's `days` (default 7)")
    baseline: str = Field(description="previous_period, trailing_N_days or absolute")
    persona: str | None = Field(None, description="null: every persona")


class RuleOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field the rule gains later passes through
    rule_id: str
    escalation_type: EscalationType
    severity: EscalationSeverity
    condition: ConditionOut
    threshold: float
    comparison: Comparison
    action: str
    notification_channels: list[str]
    for_minutes: int
    keep_firing_for_minutes: int
    min_sample: int
    recovery_threshold: float | None
    alpha: float
    enabled: bool
    description: str = Field(
        description="Jinja2 template of the escalation's description; empty = default text"
    )


class RuleList(BaseModel):
    rules: list[RuleOut]


class EvidenceOut(BaseModel):
    metric: str
    persona: str | None
    value: float | None
    baseline: float | None
    change: float | None = Field(description="relative change vs the baseline (−0.25 = −25 %)")
    p_value: float | None = Field(description="Welch test vs the baseline; null for absolute comparisons")
    n: int


class DeploymentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str
    service: str | None = None
    environment: str | None = None
    deployed_at: str


class ExperimentOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: str
    status: str
    started_at: str | None


class RelatedOut(BaseModel):
    deployments: list[DeploymentOut] = Field(default_factory=list)
    experiments: list[ExperimentOut] = Field(default_factory=list)


class HistoryOut(BaseModel):
    at: str
    kind: str = Field(description="pending, fired, notified, acknowledged or resolved")
    actor: str | None
    details: dict[str, Any]


class EscalationOut(BaseModel):
    escalation_id: str
    fingerprint: str = Field(description="hash of the sorted labels: one escalation per label set at a time")
    rule_id: str
    type: EscalationType
    severity: EscalationSeverity
    status: EscalationStatus
    title: str
    description: str
    labels: dict[str, str] = Field(description="rule, persona, metric")
    affected_personas: list[str]
    evidence: list[EvidenceOut]
    opened_at: str
    firing_at: str | None
    resolved_at: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_by: str | None = Field(description="`auto` when the condition recovered")
    resolution_notes: str | None
    related: RelatedOut = Field(description="deployments and experiments in or just before the period")
    history: list[HistoryOut]
    triage: dict[str, Any] | None = Field(
        None,
        description="the escalation agent's triage of the incident holding this escalation (summary, probable "
        "causes citing evidence ids, owner, next steps, evidence; `triage`: rules | llm); null before triage",
    )


class TriageOut(BaseModel):
    incidents: list[dict[str, Any]] = Field(description="the triage of each incident holding the escalation")


class EscalationList(BaseModel):
    escalations: list[EscalationOut]


class CheckOut(BaseModel):
    at: str
    evaluated: int = Field(description="label sets (rule × persona) evaluated")
    no_data: int = Field(description="of those, without enough data to judge (never counted as healthy)")
    opened: list[str] = Field(description="escalation ids that went pending or fired in this check")
    fired: list[str]
    resolved: list[str]
    notifications: int = Field(description="notifications queued in the outbox by this check")
    escalations: list[EscalationOut] = Field(description="pending, firing and acknowledged after the check")


class MatcherOut(BaseModel):
    label: str
    operator: MatchOperator
    value: str


class SilenceOut(BaseModel):
    silence_id: str
    matchers: list[MatcherOut]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str


class SilenceList(BaseModel):
    silences: list[SilenceOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "body is not valid JSON (or not gzip when it says so)"},
    401: {"model": ErrorBody, "description": "missing or invalid write key (when write keys are configured)"},
    404: {"model": ErrorBody, "description": "no rule, escalation or silence has this id"},
    409: {"model": ErrorBody, "description": "valid but conflicting: rule id taken, escalation already resolved"},
    413: {"model": ErrorBody, "description": "body larger than FEEDBACKLOOP_MAX_BATCH_BYTES"},
    422: {"model": ErrorBody, "description": "invalid input; `field` names it and the message starts with it"},
}  # fmt: skip

_CONDITION_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["metric"], "additionalProperties": False,
    "properties": {
        "metric": {"type": "string", "description": "error_rate, support_incidents, nps, ltv, retention_rate, …"},
        "period_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 365},
        "baseline": {"type": "string", "pattern": "^(previous_period|absolute|trailing_[0-9]{1,4}_days)$"},
        "persona": {"type": ["string", "null"], "description": "only this persona (default: each persona)"},
    },
}  # fmt: skip
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rule_id", "escalation_type", "severity", "condition", "threshold", "comparison"],
    "additionalProperties": False,
    "properties": {
        "rule_id": {"type": "string", "pattern": RULE_ID_PATTERN},
        "escalation_type": {"enum": [t.value for t in EscalationType]},
        "severity": {"enum": [s.value for s in EscalationSeverity]},
        "condition": _CONDITION_SCHEMA,
        "threshold": {"type": "number", "description": "metric units (less/greater_than) or percent (the rest)"},
        "comparison": {"enum": list(COMPARISONS)},
        "action": {"type": "string", "description": "what the receiver should do (default notify)"},
        "notification_channels": {"type": "array", "items": {"enum": ["slack", "email", "pagerduty", "webhook",
                                                                      "file"]}},
        "for_minutes": {"type": "integer", "minimum": 0, "description": "pending this long before firing"},
        "keep_firing_for_minutes": {"type": "integer", "minimum": 0},
        "min_sample": {"type": "integer", "minimum": 1, "description": "below it the instance is no_data"},
        "recovery_threshold": {"type": ["number", "null"], "description": "where a firing escalation resolves"},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "enabled": {"type": "boolean"},
        "description": {"type": "string", "maxLength": 4000, "description": "Jinja2 template; empty = default"},
    },
    "example": {
        "rule_id": "agency_errors", "escalation_type": "error_spike", "severity": "high",
        "condition": {"metric": "error_rate", "period_days": 7, "persona": "agency",
                      "baseline": "trailing_28_days"},
        "threshold": 50, "recovery_threshold": 20, "comparison": "significant_rise", "alpha": 0.01,
        "notification_channels": ["slack", "email"], "for_minutes": 60, "min_sample": 30,
    },
}  # fmt: skip
CHANGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: schema for name, schema in RULE_SCHEMA["properties"].items() if name != "rule_id"},
    "description": "any rule fields (condition is replaced as a whole); the changed rule is validated as a whole",
    "example": {"enabled": False},
}


# ---- reading bodies and mapping errors ----------------------------------------------------------------------


async def read_json(request: Request, *, empty: Any = None) -> Any:
    """The JSON body (`empty` when there is none and that is allowed), checked for what a database can store."""
    return await domain_doors.read_json(request, EscalationInputError, empty=empty)


async def read_body(request: Request, model: type[Body], *, empty_means_defaults: bool = False) -> Body:
    """The body validated by `model`, or EscalationInputError naming the first bad field (HTTP 422)."""
    return await domain_doors.read_model(
        request, model, EscalationInputError, empty_means_defaults=empty_means_defaults
    )


def parse_moment(value: str | None, field: str) -> datetime | None:
    """ISO 8601 with a UTC offset → an aware datetime; a naive, unreadable or out-of-range time is a 422 naming
    `field` (the service subtracts periods of up to years from it: year 1 would overflow into a 500)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EscalationInputError(field, f"{value[:60]!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise EscalationInputError(field, "needs a UTC offset, e.g. 2026-03-01T00:00:00Z")
    if not EARLIEST_MOMENT <= moment < LATEST_MOMENT:
        raise EscalationInputError(
            field, f"must be from {EARLIEST_MOMENT:%Y-%m-%d} to before {LATEST_MOMENT:%Y-%m-%d}"
        )
    return moment


EscalationRoute = domain_doors.parameter_route(EscalationInputError)


def install_escalation_errors(app: FastAPI) -> None:
    domain_doors.install_domain_errors(
        app, domain="escalation", input_error=EscalationInputError, state_error=EscalationStateError,
        not_found=EscalationNotFoundError,
    )  # fmt: skip
