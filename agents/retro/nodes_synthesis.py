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
from tools.retro.grounding import merge_with_rules, repair_feedback, validate, with_tool_confidence
from tools.retro.model import Signal, Synthesis, TheoryMapping
from tools.retro.rules import synthesise_rules

MAX_REPAIRS = 1


def _signals(state: RetroState) -> list[Signal]:
    return [Signal.from_dict(data) for data in state.get("signals") or []]


def _mappings(state: RetroState) -> list[TheoryMapping]:
    return [TheoryMapping.from_dict(data) for data in state.get("mappings") or []]


def _attempt(state: RetroState, runtime: Runtime[RetroContext], node: str) -> tuple[str, str]:
    """Count this attempt of an LLM node (its RetryPolicy may run it several times): usage reports requests made,
    not only the ones that were answered."""
    key = (state["retro_id"], node)
    runtime.context.llm_attempts[key] = runtime.context.llm_attempts.get(key, 0) + 1
    return key


def _attempts(runtime: Runtime[RetroContext], key: tuple[str, str]) -> int:
    return runtime.context.llm_attempts.pop(key, 1)


def _outcome_update(outcome: LLMOutcome, what: str, attempts: int, fallback: str) -> dict[str, Any]:
    usage = {**outcome.usage, "llm_calls": attempts}
    update: dict[str, Any] = {"usage": usage, "model": outcome.model, "llm_error": outcome.error}
    if outcome.synthesis is not None:
        update["llm_synthesis"] = outcome.synthesis.model_dump(mode="json")
    else:
        update["warnings"] = [f"LLM {what} unusable ({outcome.error}); {fallback}"]
        update["llm_synthesis"] = None
    return update


RULES_INSTEAD = "the rules synthesised instead"
FIRST_ANSWER_KEPT = "the first answer's grounded part is kept and the rules cover the rest"


def synthesise(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    llm = runtime.context.llm
    if llm is None or not state.get("signals"):
        return {"llm_synthesis": None, "llm_error": None, "model": None}
    key = _attempt(state, runtime, "synthesise")
    outcome = synthesise_with_llm(_signals(state), _mappings(state), llm, client=runtime.context.llm_client)
    return _outcome_update(outcome, "synthesis", _attempts(runtime, key), RULES_INSTEAD)


def repair(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    llm = runtime.context.llm
    assert llm is not None  # validate_grounding only routes here with an LLM configured
    previous = Synthesis.model_validate(state["llm_synthesis"])
    feedback = repair_feedback_from_state(state)
    key = _attempt(state, runtime, "repair")
    outcome = synthesise_with_llm(
        _signals(state),
        _mappings(state),
        llm,
        repair_feedback=feedback,
        previous=previous,
        client=runtime.context.llm_client,
    )
    update = _outcome_update(outcome, "repair", _attempts(runtime, key), FIRST_ANSWER_KEPT)
    update["repairs"] = int(state.get("repairs") or 0) + 1
    if outcome.synthesis is None:
        update["llm_synthesis"] = state["llm_synthesis"]  # keep what the first answer got right
    return update


def repair_feedback_from_state(state: RetroState) -> str:
    signals = _signals(state)
    result = validate(Synthesis.model_validate(state["llm_synthesis"]), signals)
    return repair_feedback(result.issues)


def llm_failed(state: RetroState, error: NodeError, runtime: Runtime[RetroContext]) -> Command[str]:
    """The LLM stayed unreachable (timeouts, 429, 5xx) after the retries: go on without it."""
    attempts = runtime.context.llm_attempts.pop((state["retro_id"], error.node), 0)
    message = (
        f"LLM {error.node} failed after {attempts} attempts ({type(error.error).__name__}: {error.error})"
    )
    fallback = RULES_INSTEAD if error.node == "synthesise" else FIRST_ANSWER_KEPT
    update: dict[str, Any] = {
        "warnings": [f"{message}; {fallback}"],
        "llm_error": message,
        "usage": {"llm_calls": attempts},
    }
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
        grounding = {
            "repaired": False, "repair_attempted": bool(state.get("repairs")), "issues": [],
            "dropped_insights": [], "dropped_backlog_items": [],
        }  # fmt: skip
        only_rules = {
            "synthesis": rules.model_dump(mode="json"),
            "synthesis_source": "rules",
            "grounding": grounding,
        }
        return Command(update=only_rules, goto="prioritise")
    result = validate(Synthesis.model_validate(answered), signals)
    repairs = int(state.get("repairs") or 0)
    if result.issues and repairs < MAX_REPAIRS and runtime.context.llm is not None:
        return Command(goto="repair")
    final = with_tool_confidence(merge_with_rules(result.synthesis, rules, signals), signals)
    grounding = {
        "repaired": repairs > 0 and not result.issues,  # a repair round happened and its answer holds up
        "repair_attempted": repairs > 0,
        "issues": [issue.as_dict() for issue in result.issues],
        "dropped_insights": list(result.dropped_insight_ids),
        "dropped_backlog_items": list(result.dropped_backlog_titles),
    }
    source = "llm" if result.synthesis.insights else "rules"  # nothing of the LLM's survived: say so
    update: dict[str, Any] = {
        "synthesis": final.model_dump(mode="json"), "synthesis_source": source, "grounding": grounding,
    }  # fmt: skip
    if not result.synthesis.insights:
        reason = (
            "answered no insights"
            if not Synthesis.model_validate(answered).insights
            else "wrote no insight that held up"
        )
        update["warnings"] = [f"the LLM {reason}; {RULES_INSTEAD}"]
    return Command(update=update, goto="prioritise")
