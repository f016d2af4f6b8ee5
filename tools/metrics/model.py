"""Metric results per persona and window: what the tracker, dashboard, rules and retros read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from tools.window import Window


class MetricCategory(StrEnum):
    """The seed's metric categories; any other name is a custom metric (explicit observations only)."""

    TIME_TO_VALUE = "time_to_value"
    REPORT_ACCURACY = "report_accuracy"
    RENEWAL_SUCCESS = "renewal_success"
    ERROR_RATE = "error_rate"
    SUPPORT_INCIDENTS = "support_incidents"


@dataclass(frozen=True, slots=True)
class DailyPoint:
    day: date
    n: int
    value: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "n": self.n, "value": self.value}


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One metric, one persona (None = everyone), one window.

    `value` is the headline figure in `unit`: the mean for durations (with p50/p90), the rate for proportions
    and per-user rates. `n` is its denominator. No data → value None and `reason`, never 0.
    """

    metric: str
    persona: str | None
    window: Window
    unit: str
    n: int
    value: float | None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    rate: float | None = None
    rate_ci: tuple[float, float] | None = None
    numerator: float | None = None
    sum_squares: float | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "value": self.value,
            "unit": self.unit,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "rate": self.rate,
            "rate_ci": list(self.rate_ci) if self.rate_ci else None,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """A metric now vs the previous window of equal length, with the change and its p-value (tools.stats)."""

    current: MetricSummary
    previous: MetricSummary
    change: float | None  # relative change of `value` (0.1 = +10%); None when not computable
    p_value: float | None
    significant: bool
    improved: bool | None  # None when not significant or unknown direction
    daily: tuple[DailyPoint, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "change": self.change,
            "p_value": self.p_value,
            "significant": self.significant,
            "improved": self.improved,
            "daily": [point.as_dict() for point in self.daily],
        }


@dataclass(frozen=True, slots=True)
class MetricReport:
    metric: str
    window: Window
    higher_is_better: bool
    overall: MetricComparison
    personas: dict[str, MetricComparison]

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "window": self.window.as_dict(),
            "higher_is_better": self.higher_is_better,
            "overall": self.overall.as_dict(),
            "personas": {persona: comparison.as_dict() for persona, comparison in self.personas.items()},
        }
