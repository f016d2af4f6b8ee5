"""`RetroAgent`: the seed's async API for sprint and deployment retros, over the LangGraph retro agent.

retro_agent = RetroAgent()                       # configured database, LLM (or rules) and ticket sinks
analysis = await retro_agent.run_sprint_retro(sprint_id="sprint-2024-01",
                                              sprint_start=datetime(2024, 1, 1), sprint_end=datetime(2024, 1, 14))
for insight in analysis.insights: insight.title, insight.impact ("High" | "Medium" | "Low"), insight.recommendations
for item in analysis.backlog_items: item["title"], item["priority"]["score"], item["ticket"]
analysis = await retro_agent.run_deployment_retro(version="v1.4.0", bake_hours=24)

Naive datetimes are UTC; a sprint_end at midnight means the end of that day (the seed's sprint of 1–14 January
includes the 14th).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from agents.retro.context import RetroContext
from agents.retro.llm import LLMConfig
from agents.retro.runner import RetroNotFoundError, RetroRunner, RetroStateError
from agents.retro.state import RetroRequest
from feedbackloop.runtime import database_for
from feedbackloop.settings import Settings, get_settings
from feedbackloop.tickets import ticket_sink_config
from store.database import Database
from tools.retro.gather import GatherSettings
from tools.retro.window import RetroInputError
from tools.tickets.base import TicketSink
from tools.tickets.registry import build_sinks

__all__ = [
    "RetroAgent",
    "RetroAnalysis",
    "RetroAnalysisType",
    "RetroInputError",
    "RetroInsight",
    "RetroNotFoundError",
    "RetroStateError",
    "llm_config",
    "retro_runner",
]


class RetroAnalysisType(StrEnum):
    SPRINT = "sprint"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class RetroInsight:
    id: str
    title: str
    summary: str
    journey_stage: str
    canvas_block: str
    principles: list[str]
    impact: str  # High | Medium | Low
    confidence: float
    evidence_ids: list[str]
    recommendations: list[str]


@dataclass(frozen=True)
class RetroAnalysis:
    """A finished (or approval-waiting) retro: the seed's `.insights` and `.backlog_items`, plus the full result."""

    retro_id: str
    analysis_type: RetroAnalysisType
    status: str
    insights: list[RetroInsight]
    backlog_items: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    synthesis: str
    result: dict[str, Any] = field(repr=False)

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> RetroAnalysis:
        return cls(
            retro_id=result["retro_id"],
            analysis_type=RetroAnalysisType(result["kind"]),
            status=result["status"],
            insights=[RetroInsight(**insight) for insight in result.get("insights") or []],
            backlog_items=list(result.get("backlog_items") or []),
            signals=list(result.get("signals") or []),
            synthesis=result.get("synthesis") or "rules",
            result=result,
        )


def llm_config(settings: Settings) -> LLMConfig | None:
    """The configured OpenAI-compatible server, or None (the rules synthesise; the product works offline)."""
    if not settings.llm_base_url:
        return None
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LLMConfig(
        base_url=settings.llm_base_url,
        api_key=api_key,
        model=settings.llm_model,
        structured_output=settings.llm_structured_output,
        timeout_seconds=settings.llm_timeout_seconds,
    )


def retro_runner(
    database_url: str | None = None,
    *,
    database: Database | None = None,
    settings: Settings | None = None,
    sinks: Sequence[TicketSink] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> RetroRunner:
    settings = settings or get_settings()
    context = RetroContext(
        database=database or database_for(database_url, settings),
        sinks=list(sinks) if sinks is not None else build_sinks(ticket_sink_config(settings)),
        llm=llm_config(settings),
        gather=GatherSettings(bake_hours=settings.retro_bake_hours),
        effort_weeks_default=settings.retro_effort_weeks,
    )
    return RetroRunner(replace(context, clock=clock) if clock is not None else context)


class RetroAgent:
    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        sinks: Sequence[TicketSink] | None = None,
        clock: Callable[[], datetime] | None = None,
        approve: str = "auto",
    ) -> None:
        self.settings = settings or get_settings()
        self.runner = retro_runner(database_url, settings=self.settings, sinks=sinks, clock=clock)
        self.approve = approve

    async def run_sprint_retro(
        self,
        sprint_id: str | None = None,
        sprint_start: datetime | None = None,
        sprint_end: datetime | None = None,
    ) -> RetroAnalysis:
        if sprint_start is None or sprint_end is None:
            raise RetroInputError("sprint_start" if sprint_start is None else "sprint_end", "is required")
        # The seed's sprint of datetime(2024, 1, 1) to datetime(2024, 1, 14) includes the 14th: an end at
        # midnight names the sprint's last day here; give a later time of day for an exclusive end.
        end = sprint_end.date() if sprint_end.time() == time(0) else sprint_end
        request = RetroRequest(
            kind="sprint", start=sprint_start.isoformat(), end=end.isoformat(), sprint_id=sprint_id,
            approve=self.approve,
        )  # fmt: skip
        return await self._run(request)

    async def run_deployment_retro(self, version: str, bake_hours: int | None = None) -> RetroAnalysis:
        hours = self.settings.retro_bake_hours if bake_hours is None else bake_hours
        request = RetroRequest(kind="deployment", version=version, bake_hours=hours, approve=self.approve)
        return await self._run(request)

    async def approve_backlog(self, retro_id: str, items: str | list[str] = "all") -> RetroAnalysis:
        result = await asyncio.to_thread(self.runner.approve, retro_id, items)
        return RetroAnalysis.from_result(result)

    async def resume(self, retro_id: str) -> RetroAnalysis:
        return RetroAnalysis.from_result(await asyncio.to_thread(self.runner.resume, retro_id))

    async def get_retro(self, retro_id: str) -> RetroAnalysis:
        return RetroAnalysis.from_result(await asyncio.to_thread(self.runner.result, retro_id))

    async def _run(self, request: RetroRequest) -> RetroAnalysis:
        def run() -> dict[str, Any]:
            return self.runner.run(self.runner.start(request))

        return RetroAnalysis.from_result(await asyncio.to_thread(run))
