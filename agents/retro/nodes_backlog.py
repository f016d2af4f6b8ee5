"""From the grounded synthesis to tickets: prioritise (RICE), dedupe against open backlog items, wait for
approval (optional interrupt), file exactly once per sink, and write the report. Side effects happen only after
the interrupt, in the next node (an interrupted node re-runs from its first line on resume)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents.retro.context import RetroContext
from agents.retro.result import build_result
from agents.retro.state import RetroState
from agents.retro.tickets import file_item
from store.repositories import retros as retro_sql
from tools.retro.model import Signal, Synthesis
from tools.retro.priority import prioritise as rice
from tools.retro.report import render_ticket_body


def prioritise(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    synthesis = Synthesis.model_validate(state["synthesis"])
    signals = [Signal.from_dict(data) for data in state.get("signals") or []]
    items = rice(
        synthesis.backlog_items,
        synthesis.insights,
        signals,
        effort_weeks_default=runtime.context.effort_weeks_default,
        retro_id=state["retro_id"],
    )
    insights = [insight.model_dump(mode="json") for insight in synthesis.insights]
    signal_dicts = state.get("signals") or []
    backlog = []
    for item in items:
        data = item.as_dict()
        body = render_ticket_body(data, insights, signal_dicts, state["retro_id"])
        backlog.append(replace(item, body=body).as_dict())
    return {"backlog": backlog}


def dedupe(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    """An item whose fingerprint is open from an earlier retro is noted as its duplicate and not filed again."""
    backlog = state.get("backlog") or []
    with runtime.context.database.read() as connection:
        open_items = retro_sql.open_backlog_items(connection, [item["fingerprint"] for item in backlog])
    marked = []
    for item in backlog:
        row = open_items.get(item["fingerprint"])
        earlier = row is not None and row["first_retro_id"] != state["retro_id"]
        marked.append({**item, "duplicate_of": row["first_retro_id"] if earlier and row else None})
    return {"backlog": marked}


def approve(state: RetroState) -> dict[str, Any]:
    """With approve=ask, pause until someone approves items (HTTP, CLI or a Slack button resumes the run)."""
    candidates = [item["id"] for item in state.get("backlog") or [] if not item.get("duplicate_of")]
    if state["request"].get("approve", "auto") != "ask" or not candidates:
        return {"approved_ids": candidates}
    answer = interrupt({"retro_id": state["retro_id"], "backlog_item_ids": candidates})
    return {"approved_ids": _approved(answer, candidates)}


def _approved(answer: Any, candidates: list[str]) -> list[str]:
    """The resume value: "all", "none", or a list of backlog item ids; unknown ids are ignored."""
    if answer == "all":
        return candidates
    if answer in (None, "none"):
        return []
    chosen = {str(item) for item in answer} if isinstance(answer, list | tuple) else set()
    return [item_id for item_id in candidates if item_id in chosen]


def file_tickets(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    approved = set(state.get("approved_ids") or [])
    filed: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    warnings: list[str] = []
    for data in state.get("backlog") or []:
        if data["id"] not in approved or data.get("duplicate_of"):
            continue
        filing = file_item(runtime.context, state["retro_id"], data)
        filed.append({"id": data["id"], "tickets": filing.tickets})
        failures += filing.failures
        warnings += filing.warnings
    return {"filed": filed, "filing_failures": failures, "warnings": warnings}


def report(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    result = build_result(state, status="completed")
    now = runtime.context.clock()
    with runtime.context.database.write() as connection:
        retro_sql.update_retro(
            connection, state["retro_id"], {"status": "completed", "result": result, "updated_at": now}
        )
    return {"result": result}
