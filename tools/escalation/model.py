"""Escalation rules and escalations: the seed's names, validated on construction, with Alertmanager semantics.

A rule's `condition` names the metric or KPI, the evaluation period and the baseline:
`{"metric": "error_rate", "period_days": 7, "baseline": "previous_period", "persona": "agency"?}`; baseline is
`previous_period` (the period before), `trailing_N_days` (the N days before the period, measured as periods of
the same length and pooled, so per-user rates stay comparable) or `absolute` (compare the value itself with the
threshold). Comparisons:

- `less_than` / `greater_than`: the value against `threshold` (absolute units of the metric);
- `drop_pct_greater_than` / `rise_pct_greater_than`: the change against the baseline, in percent;
- `significant_drop` / `significant_rise`: the change is at least `threshold` percent AND a two-sided Welch test
  (tools.stats) against the baseline gives p < `alpha`, so noise on low volume does not page anyone.

`recovery_threshold` (same unit as `threshold`) is where a firing escalation resolves: a rule that fires below 0
and recovers at 10 does not flap around 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from tools.notify.message import Evidence

_TEMPLATE_SYNTAX = SandboxedEnvironment()
RULE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
TRAILING_BASELINE = re.compile(r"trailing_(\d{1,4})_days")
MAX_PERIOD_DAYS = 365


class EscalationInputError(ValueError):
    """A rule, silence or request is invalid; `field` names the offending input (HTTP 422, CLI exit 2)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EscalationStateError(EscalationInputError):
    """Valid, but the current state forbids it: a rule id taken, resolving a resolved escalation (HTTP 409)."""


class EscalationNotFoundError(LookupError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} does not exist")
        self.kind = kind
        self.key = key


class EscalationType(StrEnum):
    LTV_DEGRADATION = "ltv_degradation"
    SUPPORT_LOAD_INCREASE = "support_load_increase"
    VALUE_DROP = "value_drop"
    RETENTION_DROP = "retention_drop"
    ERROR_SPIKE = "error_spike"
    CUSTOM = "custom"


class EscalationSeverity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(EscalationSeverity).index(self)


class EscalationStatus(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


COMPARISONS = (
    "less_than", "greater_than", "drop_pct_greater_than", "rise_pct_greater_than",
    "significant_drop", "significant_rise",
)  # fmt: skip
RELATIVE_COMPARISONS = {
    "drop_pct_greater_than",
    "rise_pct_greater_than",
    "significant_drop",
    "significant_rise",
}


def _enum(enum: type[StrEnum], value: Any, name: str) -> Any:
    allowed = [member.value for member in enum]
    text = value.value if isinstance(value, StrEnum) else value
    if isinstance(text, str) and text.strip().lower() in allowed:
        return enum(text.strip().lower())
    raise EscalationInputError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


def _number(value: Any, name: str, *, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 1e15:
        raise EscalationInputError(name, f"must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise EscalationInputError(name, f"must be ≥ {low:g}, got {value!r}")
    return float(value)


def _whole(value: Any, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EscalationInputError(name, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _text(value: Any, name: str, *, limit: int = 255) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise EscalationInputError(name, f"must be non-empty text of at most {limit} characters")
    return value.strip()


@dataclass
class EscalationRule:
    """When to escalate. Constructing one validates it; `metric_kind` is filled in by the service's resolver."""

    rule_id: str
    escalation_type: EscalationType | str
    severity: EscalationSeverity | str
    condition: dict[str, Any]
    threshold: float
    comparison: str
    action: str = "notify"
    notification_channels: list[str] = field(default_factory=list)
    for_minutes: int = 0
    keep_firing_for_minutes: int = 0
    min_sample: int = 30
    recovery_threshold: float | None = None
    alpha: float = 0.05
    enabled: bool = True
    description: str = ""  # optional Jinja2 template; a default text is used when empty

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or not RULE_ID_PATTERN.fullmatch(self.rule_id):
            raise EscalationInputError("rule_id", "must be 1–100 letters, digits, '_', '.', '-'")
        self.escalation_type = _enum(EscalationType, self.escalation_type, "escalation_type")
        self.severity = _enum(EscalationSeverity, self.severity, "severity")
        if not isinstance(self.comparison, str) or self.comparison not in COMPARISONS:
            raise EscalationInputError(
                "comparison", f"must be one of {', '.join(COMPARISONS)}; got {self.comparison!r}"
            )
        self.condition = _condition(self.condition)
        if self.condition["baseline"] == "absolute" and self.comparison in RELATIVE_COMPARISONS:
            raise EscalationInputError("condition.baseline", f"{self.comparison} compares with a baseline; "
                                       "use previous_period or trailing_N_days")  # fmt: skip
        self.threshold = _number(self.threshold, "threshold")
        if self.comparison in RELATIVE_COMPARISONS and self.threshold < 0:
            raise EscalationInputError("threshold", "is a percentage change and must be ≥ 0")
        if self.recovery_threshold is not None:
            self.recovery_threshold = _number(self.recovery_threshold, "recovery_threshold")
            self._check_hysteresis()
        self.action = _text(self.action, "action", limit=100)
        if not isinstance(self.notification_channels, list) or not all(
            isinstance(c, str) and c.strip() for c in self.notification_channels
        ):
            raise EscalationInputError("notification_channels", "must be a list of channel names")
        self.notification_channels = [c.strip().lower() for c in self.notification_channels]
        self.for_minutes = _whole(self.for_minutes, "for_minutes", low=0, high=60 * 24 * 30)
        self.keep_firing_for_minutes = _whole(
            self.keep_firing_for_minutes, "keep_firing_for_minutes", low=0, high=60 * 24 * 30
        )
        self.min_sample = _whole(self.min_sample, "min_sample", low=1, high=10**9)
        self.alpha = _number(self.alpha, "alpha", low=1e-9)
        if self.alpha >= 0.5:
            raise EscalationInputError("alpha", "must be below 0.5 (e.g. 0.05)")
        if not isinstance(self.enabled, bool):
            raise EscalationInputError("enabled", "must be true or false")
        if not isinstance(self.description, str) or len(self.description) > 4000:
            raise EscalationInputError("description", "must be text of at most 4000 characters")
        try:  # a template that cannot even be parsed would fail at every evaluation
            _TEMPLATE_SYNTAX.parse(self.description)
        except TemplateSyntaxError as error:
            raise EscalationInputError(
                "description", f"is not a valid Jinja2 template (line {error.lineno}: {error.message})"
            ) from None

    def _check_hysteresis(self) -> None:
        """The recovery point must lie on the healthy side of the threshold, or the rule would flap."""
        assert self.recovery_threshold is not None
        healthy_above = self.comparison == "less_than"
        healthy_below = self.comparison in {"greater_than"} | RELATIVE_COMPARISONS
        if healthy_above and self.recovery_threshold < self.threshold:
            raise EscalationInputError("recovery_threshold", "must be ≥ threshold for less_than")
        if healthy_below and self.recovery_threshold > self.threshold:
            raise EscalationInputError("recovery_threshold", f"must be ≤ threshold for {self.comparison}")

    @property
    def metric(self) -> str:
        return str(self.condition["metric"])

    @property
    def period_days(self) -> int | None:
        days = self.condition.get("period_days")
        return int(days) if days is not None else None

    @property
    def persona(self) -> str | None:
        persona = self.condition.get("persona")
        return str(persona) if persona is not None else None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            data[spec.name] = value.value if isinstance(value, StrEnum) else value
        return data


def _condition(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise EscalationInputError(
            "condition", 'must be an object like {"metric": "error_rate", "period_days": 7}'
        )
    unknown = sorted(set(value) - {"metric", "period_days", "persona", "baseline"})
    if unknown:
        raise EscalationInputError(
            f"condition.{unknown[0]}", "is not a condition field (metric, period_days, persona, baseline)"
        )
    if "metric" not in value:
        raise EscalationInputError("condition.metric", "is required")
    condition: dict[str, Any] = {"metric": _text(value["metric"], "condition.metric", limit=64).lower()}
    if value.get("period_days") is not None:  # absent: the check's `days` (default 7) decides
        condition["period_days"] = _whole(
            value["period_days"], "condition.period_days", low=1, high=MAX_PERIOD_DAYS
        )
    baseline = value.get("baseline", "previous_period")
    if not isinstance(baseline, str) or not (
        baseline in ("previous_period", "absolute") or TRAILING_BASELINE.fullmatch(baseline)
    ):
        raise EscalationInputError(
            "condition.baseline", f"must be previous_period, trailing_N_days or absolute; got {baseline!r}"
        )
    match = TRAILING_BASELINE.fullmatch(baseline)
    if match and not 1 <= int(match.group(1)) <= MAX_PERIOD_DAYS:
        raise EscalationInputError("condition.baseline", f"N of trailing_N_days must be 1–{MAX_PERIOD_DAYS}")
    condition["baseline"] = baseline
    if value.get("persona") is not None:
        condition["persona"] = _text(value["persona"], "condition.persona", limit=64).lower()
    return condition


def parse_rule(data: Any) -> EscalationRule:
    """An EscalationRule from JSON; unknown fields are refused so a typo cannot silently change behaviour."""
    if not isinstance(data, Mapping):
        raise EscalationInputError("body", "must be a JSON object describing a rule")
    allowed = {spec.name for spec in fields(EscalationRule)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise EscalationInputError(unknown[0], f"is not a rule field (known: {', '.join(sorted(allowed))})")
    for required in ("rule_id", "escalation_type", "severity", "condition", "threshold", "comparison"):
        if required not in data:
            raise EscalationInputError(required, "is required")
    return EscalationRule(**dict(data))


@dataclass(frozen=True)
class Escalation:
    """One escalation: a label set that fired, with its evidence, tracked to resolution."""

    escalation_id: str
    fingerprint: str
    rule_id: str
    escalation_type: EscalationType
    severity: EscalationSeverity
    status: EscalationStatus
    title: str
    description: str
    labels: dict[str, str]
    affected_personas: list[str]
    evidence: list[Evidence]
    opened_at: datetime
    firing_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    resolution_notes: str | None = None
    related: dict[str, Any] = field(default_factory=dict)  # deployments and experiments in or near the period
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def type(self) -> EscalationType:
        return self.escalation_type

    def as_dict(self) -> dict[str, Any]:
        return {
            "escalation_id": self.escalation_id, "fingerprint": self.fingerprint, "rule_id": self.rule_id,
            "type": self.escalation_type.value, "severity": self.severity.value, "status": self.status.value,
            "title": self.title, "description": self.description, "labels": dict(self.labels),
            "affected_personas": list(self.affected_personas),
            "evidence": [
                {"metric": e.metric, "persona": e.persona, "value": e.value, "baseline": e.baseline,
                 "change": e.change, "p_value": e.p_value, "n": e.n}
                for e in self.evidence
            ],
            "opened_at": self.opened_at.isoformat(),
            "firing_at": self.firing_at.isoformat() if self.firing_at else None,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "acknowledged_by": self.acknowledged_by, "resolved_by": self.resolved_by,
            "resolution_notes": self.resolution_notes, "related": self.related, "history": self.history,
        }  # fmt: skip
