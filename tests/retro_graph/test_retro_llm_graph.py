"""Whole retros over the planted dataset with an LLM in the loop, on SQLite and PostgreSQL: a grounded answer is
used as written; an ungrounded one gets exactly one repair round, after which the rules fill in what is still
wrong; transport faults through the real ChatOpenAI client end in a completed retro after a bounded number of
requests; and survey text asking for a ticket never becomes one.

The fakes answer from the signal rows the prompt shows (tests/retro_graph/llm_support.py). The fault cases run the
graph's real RetryPolicy (1 s, then 2 s between attempts, with jitter), so they take a few seconds each.
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from agents.retro.context import RetroContext
from agents.retro.llm import FENCE_CLOSE, FENCE_OPEN, LLMConfig
from agents.retro.runner import RetroRunner
from agents.retro.state import RetroRequest
from store.database import Database
from tests.agents.fake_openai import Reply
from tests.agents.retro_data import INJECTION
from tests.retro_graph.llm_support import (
    FROM_PROMPT,
    INJECTED_TITLE,
    INVENTED_CHANGE,
    PLANTED_PERSONA,
    UNKNOWN_SIGNAL,
    Answer,
    PromptReadingChatModel,
    PromptReadingServer,
    answer_survey,
    broken,
    grounded,
    is_planted,
    llm_item_title,
    llm_title,
    obeying_injection,
    regressions,
)
from tests.retro_graph.test_retro_graph import CONFIG, END, SPRINT
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.retro.report import render_markdown
from tools.synthetic import generate_events
from tools.tickets.jsonl import JsonlTicketSink

SPRINT_REQUEST = RetroRequest(kind="sprint", start=SPRINT["start"], end=SPRINT["end"])  # the planted sprint
SCRIPTED = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key=None, model="scripted")  # never dialled


class Fault(NamedTuple):
    replies: list[Reply]  # what the fake server answers, request by request
    requests: int  # how many requests it should receive
    synthesis: str  # llm | rules
    warning: str | None  # a fragment of the warning naming the failure


FAULTS = {
    "timeout": Fault([Reply.slow(3.0, {})] * 3, 3, "rules", "failed after 3 attempts (OpenAITimeoutError"),
    "429-then-success": Fault([Reply.status(429), FROM_PROMPT], 2, "llm", None),
    "500-every-time": Fault([Reply.status(500)] * 3, 3, "rules", "(OpenAIAPIError: Error code: 500"),
    "malformed-json": Fault(
        [Reply.text('{"insights": [{"id": "I1",')], 1, "rules", "unusable (malformed JSON"
    ),
}


@pytest.fixture
def loaded(database: Database) -> Database:
    EventIngestor(database).ingest_stream(_planted_events())
    return database


def test_a_grounded_answer_is_used_as_written(loaded: Database, tmp_path: Path) -> None:
    model = PromptReadingChatModel(replies=[grounded])
    result, filed = _retro(loaded, tmp_path, llm=SCRIPTED, llm_client=model)

    assert result["status"] == "completed" and result["synthesis"] == "llm"
    assert result["usage"]["llm_calls"] == 1 and len(model.calls) == 1
    assert result["grounding"] == _clean_grounding()
    wanted = regressions(result["signals"])
    assert [s["id"] for s in wanted if is_planted(s)], "the planted regression was not detected"
    assert [insight["title"] for insight in result["insights"]] == [llm_title(s) for s in wanted]
    assert sorted(line["title"] for line in filed) == sorted(llm_item_title(s) for s in wanted)
    assert result["warnings"] == []


@pytest.mark.parametrize("repair", [grounded, broken], ids=["repair-valid", "repair-still-bad"])
def test_an_ungrounded_answer_gets_exactly_one_repair_round(
    loaded: Database, tmp_path: Path, repair: Answer
) -> None:
    model = PromptReadingChatModel(replies=[broken, repair])
    result, _ = _retro(loaded, tmp_path, llm=SCRIPTED, llm_client=model)
    grounding, planted = result["grounding"], _planted_id(result)

    assert (
        result["usage"]["llm_calls"] == 2 and len(model.calls) == 2 and grounding["repair_attempted"] is True
    )
    assert grounding["repaired"] is (repair is grounded)  # only a repair whose answer holds up counts
    assert UNKNOWN_SIGNAL in model.calls[1]["messages"][-1].text  # the repair prompt says what was wrong
    assert result["synthesis"] == "llm"  # the insight on the other regression was valid both times
    high = [i for i in result["insights"] if i["impact"] == "High" and planted in i["evidence_ids"]]
    assert len(high) == 1
    assert {e for i in result["insights"] for e in i["evidence_ids"]} <= {s["id"] for s in result["signals"]}
    if repair is grounded:
        assert grounding == _clean_grounding(repaired=True) and high[0]["title"].startswith("LLM:")
        return
    messages = " ".join(issue["message"] for issue in grounding["issues"])
    assert f"cites {UNKNOWN_SIGNAL}, which are not signals" in messages and INVENTED_CHANGE in messages
    assert len(grounding["dropped_insights"]) == 1 and len(grounding["dropped_backlog_items"]) == 1
    assert not high[0]["title"].startswith("LLM:")  # the rules' insight stands in for the dropped one


@pytest.mark.parametrize("fault", FAULTS)
def test_transport_faults_end_in_a_completed_retro(loaded: Database, tmp_path: Path, fault: str) -> None:
    replies, requests, synthesis, warning = FAULTS[fault]
    with PromptReadingServer() as server:
        server.script(*replies)
        llm = LLMConfig(base_url=server.base_url, api_key="sk-test", model="fake-model", timeout_seconds=0.5)
        result, filed = _retro(loaded, tmp_path, llm=llm)

    assert result["status"] == "completed" and result["synthesis"] == synthesis
    assert len(server.requests) == requests <= 3  # one LLM node ran; its RetryPolicy stops at 3 attempts
    assert result["usage"]["llm_calls"] == requests  # every request counts, answered or not
    if warning is None:
        assert result["warnings"] == []
    else:
        named = [w for w in result["warnings"] if warning in w]
        assert named and "rules synthesised instead" in named[0], result["warnings"]
    planted = _planted_id(result)
    assert any(i["impact"] == "High" and planted in i["evidence_ids"] for i in result["insights"])
    assert filed


def test_survey_text_asking_for_a_ticket_never_files_one(loaded: Database, tmp_path: Path) -> None:
    answer_survey(loaded, INJECTION, persona=PLANTED_PERSONA, at=END - timedelta(days=3))
    model = PromptReadingChatModel(replies=[obeying_injection, obeying_injection])
    result, filed = _retro(loaded, tmp_path, llm=SCRIPTED, llm_client=model)

    themes = [s for s in result["signals"] if s["kind"] == "survey_theme" and INJECTION in s["text"]]
    assert themes and all(s["persona"] == PLANTED_PERSONA for s in themes)
    inside, outside = _fenced(model.calls[0]["messages"][1].text)
    assert INJECTION in inside and INJECTION not in outside  # the prompt shows it only as fenced data
    assert result["status"] == "completed" and result["usage"]["llm_calls"] == 2  # repaired, obeyed again
    assert result["grounding"]["dropped_backlog_items"] == [INJECTED_TITLE]
    assert INJECTED_TITLE not in [item["title"] for item in result["backlog_items"]]
    assert filed and INJECTED_TITLE not in [line["title"] for line in filed]  # the real problems were filed
    assert f"Dropped backlog items:\n- {INJECTED_TITLE}" in render_markdown(result)


# ---------------------------------------------------------------- helpers


def _retro(database: Database, tmp_path: Path, **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run a sprint retro over the planted sprint; its result and the tickets it wrote to the JSONL backlog."""
    backlog = tmp_path / "backlog.jsonl"
    context = RetroContext(
        database=database, sinks=[JsonlTicketSink(backlog)], llm_retry_seconds=0.05, **options
    )
    runner = RetroRunner(context)
    result = runner.run(runner.start(SPRINT_REQUEST))
    lines = backlog.read_text().splitlines() if backlog.exists() else []
    return result, [json.loads(line) for line in lines]


@functools.cache
def _planted_events() -> tuple[CanonicalEvent, ...]:
    """test_retro_graph's planted dataset, generated once for the module (events are frozen)."""
    return tuple(generate_events(CONFIG))


def _planted_id(result: dict[str, Any]) -> str:
    return str(next(signal["id"] for signal in result["signals"] if is_planted(signal)))


def _clean_grounding(*, repaired: bool = False) -> dict[str, Any]:
    return {"repaired": repaired, "repair_attempted": repaired, "issues": [], "dropped_insights": [],
            "dropped_backlog_items": []}  # fmt: skip


def _fenced(prompt: str) -> tuple[str, str]:
    """The prompt's untrusted-data block, and everything outside it."""
    before, rest = prompt.split(FENCE_OPEN)
    inside, after = rest.split(FENCE_CLOSE)
    return inside, before + after
