"""The escalation agent's nodes: load → gather → correlate → triage (LLM or rules) → validate → act.

Deterministic work is in tools.escalation.triage; the nodes move JSON between the state and those tools. The
LLM node raises only transient errors (its RetryPolicy retries them; after that its error handler routes to
validate, where the rules triage stands in). Side effects happen only in `act`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.errors import NodeError
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents.escalation.context import EscalationAgentContext
from agents.escalation.llm import triage_with_llm
from agents.escalation.state import TriageState
from tools.escalation.service import EscalationService
from tools.escalation.triage.context import gather_context
from tools.escalation.triage.correlate import correlate as correlate_incidents
from tools.escalation.triage.grounding import check_draft, merge_with_rules
from tools.escalation.triage.model import Triage, TriageDraft
from tools.escalation.triage.routing import route
from tools.escalation.triage.rules import rules_triage
from tools.escalation.triage.service import incident_evidence, load_escalations
from tools.escalation.triage.state_codec import (
    context_from_dict,
    context_to_dict,
    incident_from_dict,
    incident_to_dict,
)

Context = Runtime[EscalationAgentContext]


def load(state: TriageState, runtime: Context) -> dict[str, Any]:
    escalations = load_escalations(runtime.context.database, state.get("escalation_ids"))
    return {"loaded_ids": [e.escalation_id for e in escalations]}


def gather(state: TriageState, runtime: Context) -> dict[str, Any]:
    database = runtime.context.database
    service = EscalationService(database)
    escalations = [service.get(escalation_id) for escalation_id in state["loaded_ids"]]
    with database.read() as connection:
        context = gather_context(
            connection, escalations, datetime.fromisoformat(state["at"]), runtime.context.settings
        )
    return {"context": context_to_dict(context)}


def correlate(state: TriageState, runtime: Context) -> dict[str, Any]:
    context = context_from_dict(state["context"])
    requested = state.get("escalation_ids")
    wanted = set(requested) if requested is not None else set(state["loaded_ids"])
    incidents = correlate_incidents(context, runtime.context.settings.lookback_hours)
    return {"incidents": [incident_to_dict(i) for i in incidents if wanted & set(i.escalation_ids)]}


def triage(state: TriageState, runtime: Context) -> dict[str, Any]:
    llm = runtime.context.llm
    if llm is None or not state.get("incidents"):
        return {"llm_drafts": {}, "model": None}
    context = context_from_dict(state["context"])
    drafts: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    usage: dict[str, int] = {}
    warnings: list[str] = []
    for data in state["incidents"]:
        incident = incident_from_dict(data)
        evidence = incident_evidence(incident, context)
        outcome = triage_with_llm(incident, context, evidence, llm, client=runtime.context.llm_client)
        for key, value in outcome.usage.items():
            usage[key] = usage.get(key, 0) + value
        if outcome.draft is not None:
            drafts[incident.incident_id] = outcome.draft.model_dump(mode="json")
        else:
            errors[incident.incident_id] = f"LLM answer unusable ({outcome.error}); the rules triaged"
            warnings.append(
                f"LLM triage of {incident.incident_id} unusable ({outcome.error}); the rules triaged"
            )
    return {
        "llm_drafts": drafts,
        "llm_errors": errors,
        "model": llm.model,
        "usage": usage,
        "warnings": warnings,
    }


def llm_failed(state: TriageState, error: NodeError) -> Command[str]:
    """The LLM stayed unreachable (timeouts, 429, 5xx) after the retries: the rules triage every incident."""
    message = (
        f"LLM triage failed after retries ({type(error.error).__name__}: {error.error}); the rules triaged"
    )
    return Command(update={"llm_drafts": {}, "llm_error": message, "warnings": [message]}, goto="validate")


def validate(state: TriageState, runtime: Context) -> dict[str, Any]:
    """Hold each LLM draft to the evidence; the rules triage replaces whatever is invalid or missing."""
    context = context_from_dict(state["context"])
    drafts = state.get("llm_drafts") or {}
    triages: list[dict[str, Any]] = []
    warnings: list[str] = []
    for data in state.get("incidents") or []:
        incident = incident_from_dict(data)
        evidence = incident_evidence(incident, context)
        rules = rules_triage(incident, context)
        draft, source = rules, "rules"
        # Why the rules stand in for an LLM that was asked: the incident's own triage says so, not just the log.
        fallback = (state.get("llm_errors") or {}).get(incident.incident_id) or state.get("llm_error")
        notes = [fallback] if fallback else []
        if incident.incident_id in drafts:
            answered = TriageDraft.model_validate(drafts[incident.incident_id])
            check = check_draft(answered, evidence)
            # With no grounded cause left, the LLM's summary may state a cause that was rejected: all rules then.
            draft = merge_with_rules(check, answered, rules, evidence) if check.valid_causes else rules
            source = "llm" if check.valid_causes else "rules"
            notes = [f"{incident.incident_id}: dropped {issue}" for issue in check.issues]
            if not check.valid_causes:
                notes.append(
                    "no probable cause of the LLM's answer was grounded in the evidence; the rules triaged"
                )
        members = [f for f in context.escalations if f.escalation_id in incident.escalation_ids]
        owner = route(members, runtime.context.settings)
        triages.append(Triage(incident, draft, owner, source, evidence, tuple(notes)).as_dict())  # type: ignore[arg-type]
        warnings += [note for note in notes if note != fallback]  # the fallback is already a run warning
    return {"triages": triages, "warnings": warnings}
