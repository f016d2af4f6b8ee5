"""What an experiment measures: metric definitions over the events a user sends after first exposure.

Kinds (GrowthBook's vocabulary): `conversion` (did the event happen), `mean` (count of an event, or the sum of a
numeric property, per user), `ratio` (Σ numerator ÷ Σ denominator, delta method), `quantile` (p50/p90 of each
user's mean of a numeric property, over the users who have one), and `time_to_value` (seconds from
user_signed_up to the first report_generated, for users whose first report came after exposure). Every user
counts from their first exposure for `window_hours`; users with no events count as 0 (conversion, mean, ratio).

Names from TRACKING_PLAN.md and the seed resolve to definitions; anything else must be spelt out as a dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tools.experiments.errors import ExperimentInputError

MetricKind = Literal["conversion", "mean", "ratio", "quantile", "time_to_value"]
METRIC_KINDS: tuple[str, ...] = ("conversion", "mean", "ratio", "quantile", "time_to_value")
DEFAULT_WINDOW_HOURS = 72.0  # GrowthBook's default conversion window
MAX_WINDOW_HOURS = 24.0 * 366
MAX_NAME_CHARS = 100


@dataclass(frozen=True, slots=True)
class ExperimentMetric:
    name: str
    kind: MetricKind
    event: str | None = None
    property: str | None = None  # None: count the events
    denominator_event: str | None = None
    denominator_property: str | None = None
    quantile: float | None = None
    lower_is_better: bool = False
    window_hours: float = DEFAULT_WINDOW_HOURS
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named(completion_event: str) -> dict[str, ExperimentMetric]:
    return {
        "completion_rate": ExperimentMetric(
            "completion_rate", "conversion", event=completion_event,
            description=f"share of exposed users with a {completion_event} event",
        ),
        "task_completion_rate": ExperimentMetric(
            "task_completion_rate", "ratio", event="task_completed", denominator_event="task_attempted",
            description="task_completed ÷ (task_completed + task_failed) over exposed users",
        ),
        "time_to_value": ExperimentMetric(
            "time_to_value", "time_to_value", quantile=0.5, lower_is_better=True,
            description="median seconds from user_signed_up to first report_generated (after exposure)",
        ),
        "time_to_value_p90": ExperimentMetric(
            "time_to_value_p90", "time_to_value", quantile=0.9, lower_is_better=True,
            description="p90 seconds from user_signed_up to first report_generated (after exposure)",
        ),
        "onboarding_completion": ExperimentMetric(
            "onboarding_completion", "conversion", event="onboarding_completed",
            description="share of exposed users who completed onboarding",
        ),
        "conversion_rate": ExperimentMetric(
            "conversion_rate", "conversion", event="subscription_started",
            description="share of exposed users who started a subscription",
        ),
        "revenue": ExperimentMetric(
            "revenue", "mean", event="payment_succeeded", property="amount",
            description="payment_succeeded amount per exposed user",
        ),
        "report_accuracy": ExperimentMetric(
            "report_accuracy", "ratio", event="report_sent_uncorrected", denominator_event="report_sent",
            description="1 − report_corrected ÷ report_sent over exposed users' reports",
        ),
        "renewal_success": ExperimentMetric(
            "renewal_success", "ratio", event="sponsor_renewed", denominator_event="campaign_ended",
            description="sponsor_renewed ÷ campaign_ended over exposed users' campaigns",
        ),
        "error_rate": ExperimentMetric(
            "error_rate", "mean", event="error_occurred", lower_is_better=True,
            description="error_occurred events per exposed user",
        ),
        "support_incidents": ExperimentMetric(
            "support_incidents", "mean", event="support_ticket_opened", lower_is_better=True,
            description="support_ticket_opened events per exposed user",
        ),
        "reports_generated": ExperimentMetric(
            "reports_generated", "mean", event="report_generated",
            description="report_generated events per exposed user",
        ),
    }  # fmt: skip


# task_attempted and report_sent_uncorrected are derived names the SQL layer understands (see
# store.repositories.experiment_stats.DERIVED_EVENTS).


def supports_cuped(metric: ExperimentMetric) -> bool:
    """Per-user sums have a pre-exposure analogue; ratios, quantiles and time to value do not."""
    return metric.kind in ("conversion", "mean")


def known_metric_names() -> tuple[str, ...]:
    return tuple(sorted(_named("onboarding_completed")))


def parse_metric(value: Any, field: str, *, completion_event: str) -> ExperimentMetric:
    """A metric from its name (see `known_metric_names`) or a definition dict; errors name `field`."""
    if isinstance(value, str):
        named = _named(completion_event)
        if value not in named:
            raise ExperimentInputError(
                field, f"unknown metric {value!r}; known: {', '.join(sorted(named))} (or a definition object)"
            )
        return named[value]
    if isinstance(value, ExperimentMetric):
        return value
    if not isinstance(value, Mapping):
        raise ExperimentInputError(field, "must be a metric name or an object with name, kind and event")
    return _from_mapping(value, field)


def _from_mapping(value: Mapping[str, Any], field: str) -> ExperimentMetric:
    allowed = set(ExperimentMetric.__dataclass_fields__)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ExperimentInputError(
            f"{field}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}"
        )
    name = _text(value.get("name"), f"{field}.name")
    kind = value.get("kind")
    if kind not in METRIC_KINDS:
        raise ExperimentInputError(f"{field}.kind", f"must be one of {', '.join(METRIC_KINDS)}, got {kind!r}")
    event = None if kind == "time_to_value" else _text(value.get("event"), f"{field}.event")
    prop = _optional_text(value.get("property"), f"{field}.property")
    denominator_event = _optional_text(value.get("denominator_event"), f"{field}.denominator_event")
    if kind == "ratio" and denominator_event is None:
        raise ExperimentInputError(f"{field}.denominator_event", "a ratio metric needs a denominator event")
    if kind == "quantile" and prop is None:
        raise ExperimentInputError(f"{field}.property", "a quantile metric needs a numeric property")
    quantile = value.get("quantile")
    if kind in ("quantile", "time_to_value"):
        quantile = 0.5 if quantile is None else quantile
        if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
            raise ExperimentInputError(f"{field}.quantile", f"must be between 0 and 1, got {quantile!r}")
    elif quantile is not None:
        raise ExperimentInputError(f"{field}.quantile", f"only quantile metrics take a quantile, not {kind}")
    window = value.get("window_hours", DEFAULT_WINDOW_HOURS)
    if isinstance(window, bool) or not isinstance(window, int | float) or not math.isfinite(window):
        raise ExperimentInputError(f"{field}.window_hours", f"must be a number of hours, got {window!r}")
    if not 0 < window <= MAX_WINDOW_HOURS:
        raise ExperimentInputError(
            f"{field}.window_hours", f"must be in (0, {MAX_WINDOW_HOURS:g}], got {window}"
        )
    lower = value.get("lower_is_better", False)
    if not isinstance(lower, bool):
        raise ExperimentInputError(f"{field}.lower_is_better", "must be true or false")
    return ExperimentMetric(
        name=name, kind=kind, event=event, property=prop, denominator_event=denominator_event,
        denominator_property=_optional_text(value.get("denominator_property"), f"{field}.denominator_property"),
        quantile=float(quantile) if quantile is not None else None, lower_is_better=lower,
        window_hours=float(window), description=str(value.get("description", ""))[:500],
    )  # fmt: skip


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ExperimentInputError(field, "must be a non-empty string")
    if len(value) > MAX_NAME_CHARS:
        raise ExperimentInputError(field, f"is {len(value)} characters; the limit is {MAX_NAME_CHARS}")
    return value.strip()


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)
