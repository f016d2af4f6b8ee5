"""The retro's result document (the JSON shape of the CLI's --format json and of GET /v1/retros/{id})."""

from __future__ import annotations

from typing import Any

from agents.retro.state import RetroState

NO_USAGE = {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0}


def build_result(state: RetroState, *, status: str) -> dict[str, Any]:
    window = state.get("window") or {}
    request = state.get("request") or {}
    synthesis = state.get("synthesis") or {"insights": [], "backlog_items": []}
    tickets = {entry["id"]: entry["tickets"] for entry in state.get("filed") or []}
    backlog = []
    for item in state.get("backlog") or []:
        filed = tickets.get(item["id"], [])
        backlog.append({**item, "tickets": filed, "ticket": filed[0] if filed else None})
    return {
        "retro_id": state.get("retro_id"),
        "kind": request.get("kind"),
        "sprint_id": window.get("sprint_id") or request.get("sprint_id"),
        "version": window.get("version") or request.get("version"),
        "status": status,
        "window": {"start": window.get("start"), "end": window.get("end")},
        "baseline": {"start": window.get("baseline_start"), "end": window.get("baseline_end")},
        "synthesis": state.get("synthesis_source") or "rules",
        "model": state.get("model"),
        "signals": state.get("signals") or [],
        "insights": synthesis.get("insights") or [],
        "backlog_items": backlog,
        "usage": {**NO_USAGE, **(state.get("usage") or {})},
        "warnings": list(state.get("warnings") or []),
        "filing_failures": list(state.get("filing_failures") or []),
        "grounding": state.get("grounding") or {},
    }
