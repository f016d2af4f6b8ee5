"""Result types: plain frozen dataclasses, JSON-ready via `as_dict` (no NaN, no infinities)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class ArmSummary:
    name: str
    n: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class EffectResult:
    """One treatment against control. On failure every number is None and `error` says why."""

    name: str
    n: int
    mean: float | None
    effect: float | None = None
    se: float | None = None
    ci: tuple[float | None, float | None] | None = None
    p_value: float | None = None
    chance_to_win: float | None = None
    risk: tuple[float, float] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "mean": finite_or_none(self.mean),
            "effect": finite_or_none(self.effect),
            "se": finite_or_none(self.se),
            "ci": [finite_or_none(self.ci[0]), finite_or_none(self.ci[1])] if self.ci else None,
            "p_value": finite_or_none(self.p_value),
            "chance_to_win": finite_or_none(self.chance_to_win),
            "risk": [finite_or_none(self.risk[0]), finite_or_none(self.risk[1])] if self.risk else None,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    control: ArmSummary
    variants: tuple[EffectResult, ...]
    srm_p_value: float | None
    srm: bool

    def as_dict(self) -> dict[str, Any]:
        control = {"name": self.control.name, "n": self.control.n, "mean": finite_or_none(self.control.mean)}
        return {
            "metric": self.metric,
            "srm_p_value": finite_or_none(self.srm_p_value),
            "srm": self.srm,
            "variants": [control, *(v.as_dict() for v in self.variants)],
        }
