"""A whole retro against a live OpenAI-compatible server (FEEDBACKLOOP_LLM_BASE_URL), on the planted dataset:
it completes, cites only real signals, states only their numbers, and still surfaces the planted regression."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.retro.context import RetroContext
from agents.retro.llm import LLMConfig
from agents.retro.runner import RetroRunner
from store.database import Database
from tests.retro_graph.test_retro_graph import SPRINT, loaded  # noqa: F401  (the planted dataset fixture)
from tools.retro.gather import GatherSettings
from tools.retro.grounding import validate
from tools.retro.model import InsightDraft, Signal, Synthesis
from tools.tickets.jsonl import JsonlTicketSink

BASE_URL = os.environ.get("FEEDBACKLOOP_LLM_BASE_URL")


@pytest.mark.live_llm
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not BASE_URL, reason="live LLM test: set FEEDBACKLOOP_LLM_BASE_URL to run it")
def test_a_whole_retro_with_a_live_llm_is_grounded(loaded: Database, tmp_path: Path) -> None:  # noqa: F811
    llm = LLMConfig(
        base_url=BASE_URL or "",
        api_key=os.environ.get("FEEDBACKLOOP_LLM_API_KEY"),
        model=os.environ.get("FEEDBACKLOOP_LLM_MODEL", "gemma-3-270m"),
        structured_output=os.environ.get("FEEDBACKLOOP_LLM_STRUCTURED_OUTPUT", "json_object_schema"),  # type: ignore[arg-type]
        timeout_seconds=float(os.environ.get("FEEDBACKLOOP_LLM_TIMEOUT_SECONDS", "900")),
    )
    context = RetroContext(
        database=loaded, sinks=[JsonlTicketSink(tmp_path / "backlog.jsonl")], llm=llm, gather=GatherSettings()
    )
    runner = RetroRunner(context)
    result = runner.run(runner.start(SPRINT))

    assert result["status"] == "completed" and 1 <= result["usage"]["llm_calls"] <= 2
    signals = [Signal.from_dict(s) for s in result["signals"]]
    insights = [InsightDraft(**insight) for insight in result["insights"]]
    assert validate(Synthesis(insights=insights), signals).issues == ()
    planted = {s.id for s in signals if s.metric == "error_rate" and s.persona == "podcast_network"}
    assert any(i.impact == "High" and planted & set(i.evidence_ids) for i in insights)
