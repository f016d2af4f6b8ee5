"""The seed's retro snippet runs as written (only the import line changed), on SQLite and PostgreSQL.

The data: 40 days of the synthetic product ending with the seed's sprint (1–14 January 2024), with a deployment on
its first day that multiplies podcast_network report errors, so the retro has a High insight to print.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedbackloop import RetroAgent, RetroAnalysisType
from feedbackloop.settings import Settings
from store.database import Database
from tools.events.ingest import EventIngestor
from tools.synthetic import PlantedDeployment, SyntheticConfig, generate_events
from tools.tickets.jsonl import JsonlTicketSink

CONFIG = SyntheticConfig(
    users=500, days=40, seed=5, end=datetime(2024, 1, 15, tzinfo=UTC),
    deployments=(PlantedDeployment(day=26, error_multiplier=6.0),),
)  # fmt: skip


@pytest.fixture
def retro_agent(database: Database, tmp_path: Path) -> Iterator[RetroAgent]:
    EventIngestor(database).ingest_stream(generate_events(CONFIG))
    settings = Settings(database_url=database.url)
    yield RetroAgent(database.url, settings=settings, sinks=[JsonlTicketSink(tmp_path / "backlog.jsonl")])


async def seed_snippet(retro_agent: RetroAgent) -> None:
    # ---- the seed's snippet, as written ----
    # Run sprint retro
    analysis = await retro_agent.run_sprint_retro(
        sprint_id="sprint-2024-01",
        sprint_start=datetime(2024, 1, 1),
        sprint_end=datetime(2024, 1, 14)
    )  # fmt: skip

    # Access insights
    for insight in analysis.insights:
        if insight.impact == "High":
            print(f"High impact: {insight.title}")
            print(f"Recommendations: {insight.recommendations}")

    # Get backlog items
    for item in analysis.backlog_items:
        print(f"Backlog: {item['title']}")


def test_the_seeds_sprint_retro_snippet_runs_as_written(retro_agent: RetroAgent, tmp_path: Path) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(seed_snippet(retro_agent))

    output = printed.getvalue()
    assert "High impact: error_rate worsened" in output and "podcast_network" in output
    assert "Recommendations: [" in output and "Backlog: " in output
    filed = (tmp_path / "backlog.jsonl").read_text().splitlines()
    assert len(filed) == output.count("Backlog: ")


def test_the_sprint_covers_the_seeds_fourteen_days(retro_agent: RetroAgent) -> None:
    analysis = asyncio.run(
        retro_agent.run_sprint_retro(
            sprint_id="sprint-2024-01", sprint_start=datetime(2024, 1, 1), sprint_end=datetime(2024, 1, 14)
        )
    )
    assert analysis.analysis_type is RetroAnalysisType.SPRINT and analysis.status == "completed"
    assert analysis.result["window"] == {
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-15T00:00:00+00:00",
    }
    assert analysis.result["baseline"]["start"] == "2023-12-18T00:00:00+00:00"
