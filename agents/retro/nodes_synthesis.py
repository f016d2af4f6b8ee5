"""Synthesis: one LLM call (plus at most one repair round), held to the evidence by the grounding validator; the
rules synthesiser fills in whatever the LLM left out or got wrong, and takes over when no LLM is configured or
the LLM fails (after the node's RetryPolicy gave up, its error handler routes here)."""

from __future__ import annotations

from typing import Any

from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.retro.context import RetroContext
from agents.retro.llm import LLMOutcome, synthesise_with_llm
from agents.retro.state import RetroState
from tools.retro.grounding import merge_with_rules, repair_feedback, validate
from tools.retro.model import Signal, Synthesis, TheoryMapping
from tools.retro.rules import synthesise_rules

MAX_REPAIRS = 1


def _signals(state: RetroState) -> list[Signal]:
    return [Signal.from_dict(data) for data in state.get("signals") or []]


def _mappings(state: RetroState) -> list[TheoryMapping]:
    return [TheoryMapping.from_dict(data) for data in state.get("mappings") or []]


def _outcome_update(outcome: LLMOutcome, what: str) -> dict[str, Any]:
    update: dict[str, Any] = {
        "usage": dict(outcome.usage),
        "model": outcome.model,
        "llm_error": outcome.error,
    }
    if outcome.synthesis is not None:
        update["llm_synthesis"] = outcome.synthesis.model_dump(mode="json")
    else:
        update["warnings"] = [f"LLM {what} unusable ({outcome.error}); the rules synthesised instead"]
        update["llm_synthesis"] = None
    return update


def synthesise(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    llm = runtime.context.llm
    if llm is None or not state.get("signals"):
        return {"llm_synthesis": None, "llm_error": None, "model": None}
    outcome = synthesise_with_llm(_signals(state), _mappings(state), llm, client=runtime.context.llm_client)
    return _outcome_update(outcome, "synthesis")


def repair(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    llm = runtime.context.llm
    assert llm is not None  # validate_grounding only routes here with an LLM configured
    previous = Synthesis.model_validate(state["llm_synthesis"])
    feedback = repair_feedback_from_state(state)
    outcome = synthesise_with_llm(
        _signals(state),
        _mappings(state),
        llm,
        repair_feedback=feedback,
        previous=previous,
        client=runtime.context.llm_client,
    )
    update = _outcome_update(outcome, "repair")
    update["repairs"] = int(state.get("repairs") or 0) + 1
    if outcome.synthesis is None:
        update["llm_synthesis"] = state["llm_synthesis"]  # keep what the first answer got right
    return update


def repair_feedback_from_state(state: RetroState) -> str:
    signals = _signals(state)
    result = validate(Synthesis.model_validate(state["llm_synthesis"]), signals)
    return repair_feedback(result.issues)


def llm_failed(state: RetroState, error: NodeError) -> Command[str]:
    """The LLM stayed unreachable (timeouts, 429, 5xx) after the retries: go on with the rules."""
    message = f"LLM {error.node} failed after retries ({type(error.error).__name__}: {error.error})"
    update: dict[str, Any] = {"warnings": [f"{message}; the rules synthesised instead"], "llm_error": message}
    if error.node == "synthesise":
        update["llm_synthesis"] = None
    else:
        update["repairs"] = int(state.get("repairs") or 0) + 1
    return Command(update=update, goto="validate_grounding")


def validate_grounding(state: RetroState, runtime: Runtime[RetroContext]) -> Command[str]:
    signals, mappings = _signals(state), _mappings(state)
    rules = synthesise_rules(signals, mappings)
    answered = state.get("llm_synthesis")
    if answered is None:
        grounding = {"repaired": False, "issues": [], "dropped_insights": [], "dropped_backlog_items": []}
        update = {
            "synthesis": rules.model_dump(mode="json"),
            "synthesis_source": "rules",
            "grounding": grounding,
        }
        return Command(update=update, goto="prioritise")
    result = validate(Synthesis.model_validate(answered), signals)
    repairs = int(state.get("repairs") or 0)
    if result.issues and repairs < MAX_REPAIRS and runtime.context.llm is not None:
        return Command(goto="repair")
    final = merge_with_rules(result.synthesis, rules, signals)
    grounding = {
        "repaired": repairs > 0,
        "issues": [issue.as_dict() for issue in result.issues],
        "dropped_insights": list(result.dropped_insight_ids),
        "dropped_backlog_items": list(result.dropped_backlog_titles),
    }
    source = "llm" if result.synthesis.insights else "rules"  # nothing of the LLM's survived: say so
    update = {"synthesis": final.model_dump(mode="json"), "synthesis_source": source, "grounding": grounding}
    return Command(update=update, goto="prioritise")
