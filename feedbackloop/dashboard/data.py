"""What the dashboard shows, as plain data: the template renders exactly this and computes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools.kpis.model import KpiValue
from tools.metrics.model import MetricReport
from tools.window import Window


@dataclass(frozen=True, slots=True)
class KpiCard:
    """One KPI now vs the previous window. Colour it only when `significant` (green if `improved`, else red)."""

    name: str
    label: str  # human title, e.g. "Conversion rate"
    category: str  # business_success | operational_ease | user_success
    unit: str  # ratio | usd | hours | minutes | score | per_user_30d | x
    value: float | None
    previous_value: float | None
    change: float | None  # relative change (0.1 = +10%)
    p_value: float | None
    significant: bool
    improved: bool | None
    n: int
    reason: str | None  # why value is None


@dataclass(frozen=True, slots=True)
class Panel:
    """A list panel (open escalations, running experiments); shown only when it has rows."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class DashboardData:
    window: Window
    persona: str | None  # the persona filter, None = all
    generated_at: datetime
    cards: list[KpiCard]
    persona_kpis: dict[str, dict[str, KpiValue]]  # persona → KPI name → value, for the comparison table
    persona_leaders: dict[str, str] = field(
        default_factory=dict
    )  # KPI name → best persona (significant only)
    metrics: list[MetricReport] = field(default_factory=list)  # daily series per persona for charts
    panels: list[Panel] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"window": self.window.as_dict(), "persona": self.persona, "cards": len(self.cards)}
