"""`KPIDashboardAggregator`: the seed's async API for the KPI dashboard and persona comparisons.

kpi_dashboard = KPIDashboardAggregator()
dashboard = await kpi_dashboard.generate_dashboard(days=30)
comparison = await kpi_dashboard.compare_personas(kpi_category=KPICategory.BUSINESS_SUCCESS, days=30)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from feedbackloop.dashboard.build import build_dashboard
from feedbackloop.dashboard.data import DashboardData
from feedbackloop.dashboard.render import render_dashboard
from feedbackloop.runtime import database_for
from feedbackloop.settings import Settings, get_settings
from tools.kpis.comparison import PersonaRanking, rank_personas
from tools.kpis.compute import compute_kpis
from tools.kpis.model import KpiSnapshot
from tools.window import Window


class KPICategory(StrEnum):
    BUSINESS_SUCCESS = "business_success"
    OPERATIONAL_EASE = "operational_ease"
    USER_SUCCESS = "user_success"


@dataclass(frozen=True)
class PersonaComparison:
    category: KPICategory
    window: Window
    rankings: list[PersonaRanking]

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "window": self.window.as_dict(),
            "kpis": {
                r.kpi: {
                    "ranking": [{"persona": x.persona, "value": x.value, "n": x.n} for x in r.ranking],
                    "leader": r.leader,
                    "p_value": r.p_value,
                    "significant": r.significant,
                    "note": r.note,
                }
                for r in self.rankings
            },
        }


class KPIDashboardAggregator:
    def __init__(self, database_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.database = database_for(database_url, self.settings)

    async def kpis(self, days: int = 30, end: datetime | None = None) -> KpiSnapshot:
        """Every KPI overall and per persona, with n and window (JSON: `.as_dict()`)."""
        window = Window.last_days(days, end)

        def compute() -> KpiSnapshot:
            with self.database.read() as connection:
                return compute_kpis(connection, window, gross_margin=self.settings.gross_margin)

        return await asyncio.to_thread(compute)

    async def generate_dashboard(
        self, days: int = 30, end: datetime | None = None, persona: str | None = None
    ) -> DashboardData:
        """KPI cards vs the previous window, persona table, metric charts; `.html()` renders the page."""
        window = Window.last_days(days, end)
        return await asyncio.to_thread(build_dashboard, self.database, self.settings, window, persona=persona)

    async def render_dashboard(
        self, days: int = 30, end: datetime | None = None, persona: str | None = None
    ) -> str:
        return render_dashboard(await self.generate_dashboard(days=days, end=end, persona=persona))

    async def compare_personas(
        self,
        kpi_category: KPICategory | str = KPICategory.BUSINESS_SUCCESS,
        days: int = 30,
        end: datetime | None = None,
    ) -> PersonaComparison:
        """Personas ranked per KPI of the category; a leader only where best vs worst differ significantly."""
        category = KPICategory(kpi_category)
        snapshot = await self.kpis(days=days, end=end)
        return PersonaComparison(category, snapshot.window, rank_personas(snapshot, category.value))
