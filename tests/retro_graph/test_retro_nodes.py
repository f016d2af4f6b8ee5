"""The retro graph's nodes one at a time, on hand-built state (no database): synthesis with a scripted chat model,
grounding's routing (repair once, then merge with the rules), the LLM error handler, approval answers, the result
document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph.errors import NodeError
from langgraph.runtime import Runtime

from agents.retro.context import RetroContext
from agents.retro.llm import FENCE_CLOSE, FENCE_OPEN, LLMConfig, render_user_prompt
from agents.retro.nodes_backlog import _approved
from agents.retro.nodes_data import map_theory
from agents.retro.nodes_synthesis import llm_failed, repair, synthesise, validate_grounding
from agents.retro.result import build_result
from agents.retro.state import RetroState
from store.database import Database
from tests.agents.fake_chat import ScriptedChatModel, answer
from tests.retro.support import planted
from tools.journey import map_signals
from tools.retro.model import Signal, Synthesis

LLM = LLMConfig(
    base_url="http://127.0.0.1:9/v1", api_key=None, model="scripted", structured_output="json_object_schema"
)
SIGNALS = planted()


def _runtime(replies: list[Any] | None = None, *, llm: LLMConfig | None = LLM) -> Runtime[RetroContext]:
    database = Database("sqlite://", upgrade=False)  # never queried by these nodes
    client = ScriptedChatModel(replies=replies or []) if replies is not None else None
    return Runtime(context=RetroContext(database=database, sinks=[], llm=llm, llm_client=client))


def _state(**values: Any) -> RetroState:
    base: RetroState = {
        "retro_id": "retro-test",
        "request": {"kind": "sprint", "approve": "auto"},
        "signals": [s.as_dict() for s in SIGNALS],
        "mappings": [m.as_dict() for m in map_signals(SIGNALS)],
    }
    return {**base, **values}  # type: ignore[typeddict-item]


def _insight(evidence: list[str], summary: str, impact: str = "High") -> dict[str, Any]:
    return {
        "id": "I1", "title": "Report errors rose for networks", "summary": summary, "journey_stage": "adoption",
        "canvas_block": "key_activities", "principles": ["friction_ability"], "impact": impact, "confidence": 0.9,
        "evidence_ids": evidence, "recommendations": ["Fix the exporter"],
    }  # fmt: skip


GROUNDED = {
    "insights": [_insight(["S1", "S2"], "error_rate rose +200.0% after v1.4.0.")],
    "backlog_items": [],
}
INVENTED = {"insights": [_insight(["S1", "S99"], "error_rate rose 57%.")], "backlog_items": []}


def test_map_theory_maps_every_signal() -> None:
    mappings = map_theory(_state(mappings=[]))["mappings"]
    assert [m["signal_id"] for m in mappings] == [s.id for s in SIGNALS]


def test_synthesise_without_an_llm_leaves_it_to_the_rules() -> None:
    assert synthesise(_state(), _runtime(llm=None)) == {
        "llm_synthesis": None,
        "llm_error": None,
        "model": None,
    }


def test_synthesise_keeps_the_llm_answer_and_its_usage() -> None:
    update = synthesise(
        _state(), _runtime([answer(json.dumps(GROUNDED), input_tokens=500, output_tokens=80)])
    )
    assert update["llm_synthesis"]["insights"][0]["evidence_ids"] == ["S1", "S2"]
    assert update["usage"] == {"llm_calls": 1, "input_tokens": 500, "output_tokens": 80}


def test_an_unparsable_answer_is_a_warning_not_a_failure() -> None:
    update = synthesise(_state(), _runtime([answer("the errors went up, sorry, no JSON")]))
    assert update["llm_synthesis"] is None and "rules synthesised instead" in update["warnings"][0]


def test_grounding_sends_an_invalid_answer_back_once_then_merges_with_the_rules() -> None:
    first = validate_grounding(_state(llm_synthesis=INVENTED, repairs=0), _runtime([]))
    assert first.goto == "repair"
    last = validate_grounding(_state(llm_synthesis=INVENTED, repairs=1), _runtime([]))
    update: dict[str, Any] = last.update  # type: ignore[assignment]
    assert (
        last.goto == "prioritise" and update["synthesis_source"] == "rules"
    )  # nothing of the LLM's survived
    assert update["grounding"]["dropped_insights"] == ["I1"]
    assert update["grounding"]["repair_attempted"] is True and update["grounding"]["repaired"] is False
    assert update["warnings"] == ["the LLM wrote no insight that held up; the rules synthesised instead"]
    paths = [issue["path"] for issue in update["grounding"]["issues"]]
    assert "insights[0].evidence_ids" in paths and "insights[0].summary" in paths
    assert any("S1" in i["evidence_ids"] and i["impact"] == "High" for i in update["synthesis"]["insights"])


def test_a_grounded_answer_is_kept_and_labelled_llm() -> None:
    command = validate_grounding(_state(llm_synthesis=GROUNDED, repairs=0), _runtime([]))
    update: dict[str, Any] = command.update  # type: ignore[assignment]
    assert command.goto == "prioritise" and update["synthesis_source"] == "llm"
    assert update["synthesis"]["insights"][0]["summary"] == GROUNDED["insights"][0]["summary"]
    assert update["grounding"]["issues"] == []


def test_repair_feeds_the_issues_back_and_counts_the_round() -> None:
    runtime = _runtime([answer(json.dumps(GROUNDED))])
    update = repair(_state(llm_synthesis=INVENTED, repairs=0), runtime)
    assert update["repairs"] == 1 and update["llm_synthesis"] == Synthesis.model_validate(
        GROUNDED
    ).model_dump(mode="json")
    prompt = runtime.context.llm_client.calls[0]["messages"][-1].content
    assert "S99" in prompt and "57%" in prompt  # the validator's findings went back to the model


def test_the_error_handler_routes_to_the_rules_and_counts_every_attempt() -> None:
    runtime = _runtime([TimeoutError("read timed out")] * 3)
    for _ in range(3):  # what the RetryPolicy does before it gives up
        with pytest.raises(TimeoutError):
            synthesise(_state(), runtime)
    command = llm_failed(_state(), NodeError("synthesise", TimeoutError("read timed out")), runtime)
    update: dict[str, Any] = command.update  # type: ignore[assignment]
    assert command.goto == "validate_grounding" and update["llm_synthesis"] is None
    assert update["usage"] == {"llm_calls": 3} and runtime.context.llm_attempts == {}
    assert (
        "after 3 attempts (TimeoutError: read timed out); the rules synthesised instead"
        in update["warnings"][0]
    )


def test_words_taken_from_survey_text_stay_inside_the_fence() -> None:
    theme = Signal.from_dict({**SIGNALS[4].as_dict(), "facts": {"theme": "grant admin", "mentions": 4}})
    prompt = render_user_prompt([SIGNALS[0], theme], map_signals([SIGNALS[0], theme]))
    fenced = prompt[prompt.index(FENCE_OPEN) : prompt.index(FENCE_CLOSE)]
    assert prompt.count("grant admin") == fenced.count("grant admin") >= 1
    assert '"mentions": "4"' in prompt or '"mentions": 4' in prompt  # its numbers stay in the row


def test_approval_answers() -> None:
    candidates = ["B1", "B2", "B3"]
    assert _approved("all", candidates) == candidates
    assert _approved("none", candidates) == [] and _approved(None, candidates) == []
    assert _approved(["B3", "B9", "B1"], candidates) == ["B1", "B3"]
    assert _approved("B1", candidates) == []  # a bare id is not a list: nothing is filed by accident


def test_the_result_document_has_the_documented_shape() -> None:
    result = build_result(
        _state(synthesis=GROUNDED, synthesis_source="llm", usage={"llm_calls": 1}), status="completed"
    )
    assert set(result) >= {"retro_id", "kind", "window", "baseline", "synthesis", "model", "signals", "insights",
                           "backlog_items", "usage", "warnings", "grounding", "status"}  # fmt: skip
    assert result["usage"] == {"llm_calls": 1, "input_tokens": 0, "output_tokens": 0}
