"""KPI results: every value carries its n (denominator) and window; missing inputs → value None with a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tools.window import Window

KpiCategory = Literal["business_success", "operational_ease", "user_success"]
# "proportion": numerator/denominator of units (testable as a binomial); "per_unit": a mean of per-unit values
# (testable when sums of squares are known); "derived": built from other figures (no test).
KpiKind = Literal["proportion", "per_unit", "derived"]


@dataclass(frozen=True, slots=True)
class KpiDefinition:
    name: str
    category: KpiCategory
    unit: str  # "ratio" (0–1), "usd", "hours", "minutes", "score", "per_user_30d", "x"
    kind: KpiKind
    higher_is_better: bool
    description: str


@dataclass(frozen=True, slots=True)
class KpiValue:
    """One KPI for one persona (or overall) in one window.

    `value` None ⇔ `reason` set ("no paying accounts in the window", …) — never a silent 0. `numerator` and
    `denominator` are the inputs a proportion was computed from; `sum_squares` lets per-unit means be tested.
    """

    name: str
    value: float | None
    n: int
    reason: str | None = None
    numerator: float | None = None
    denominator: float | None = None
    sum_squares: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"value": self.value, "n": self.n, "reason": self.reason}
        body.update(self.extra)
        return body


@dataclass(frozen=True, slots=True)
class KpiSnapshot:
    window: Window
    overall: dict[str, KpiValue]
    personas: dict[str, dict[str, KpiValue]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.as_dict(),
            "overall": {name: value.as_dict() for name, value in self.overall.items()},
            "personas": {
                persona: {name: value.as_dict() for name, value in values.items()}
                for persona, values in self.personas.items()
            },
        }
