"""The escalation agent's state: plain JSON only (dicts, lists, strings, numbers), like the retro's, so every
checkpointer loads it; typed objects are rebuilt inside the nodes (tools.escalation.triage.state_codec)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agents.retro.state import add_usage


class TriageState(TypedDict, total=False):
    run_id: str
    escalation_ids: list[str] | None  # None: every active escalation
    at: str  # ISO 8601: the moment the triage is for
    loaded_ids: list[str]
    context: dict[str, Any]  # TriageContext
    incidents: list[dict[str, Any]]  # Incident
    llm_drafts: dict[str, dict[str, Any]]  # incident id → TriageDraft the LLM answered (before grounding)
    llm_error: str | None  # the LLM stayed unreachable after retries: every incident fell back to the rules
    llm_errors: dict[str, str]  # incident id → why its LLM answer was unusable (it fell back to the rules)
    model: str | None
    triages: list[dict[str, Any]]  # Triage.as_dict(), grounded, recorded by `act`
    tickets: list[dict[str, Any]]
    resolved_incidents: list[str]
    usage: Annotated[dict[str, int], add_usage]
    warnings: Annotated[list[str], operator.add]
