"""Running the escalation agent: one graph run per call, checkpointed on the configured database (thread id = the
run id), so a run killed part-way resumes from its last finished node and files no ticket twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig

from agents.escalation.context import EscalationAgentContext
from agents.escalation.graph import build_graph
from agents.retro.checkpoint import checkpointer

SETUP_POLL_SECONDS = 0.05


def run_escalation_agent(
    context: EscalationAgentContext,
    database_url: str,
    escalation_ids: Sequence[str] | None = None,
    *,
    at: datetime | None = None,
    run_id: str | None = None,
    retry_initial_seconds: float = 1.0,
) -> dict[str, Any]:
    """Triage the incidents holding `escalation_ids` (every active escalation when None) at `at` (default now)."""
    run_id = run_id or "tri_" + uuid.uuid4().hex[:16]
    moment = at or context.clock()
    request: dict[str, Any] = {
        "run_id": run_id,
        "escalation_ids": list(escalation_ids) if escalation_ids is not None else None,
        "at": moment.isoformat(),
    }
    config: RunnableConfig = {"configurable": {"thread_id": run_id}}
    with checkpointer(database_url) as saver:
        graph = build_graph(saver, retry_initial_seconds=retry_initial_seconds)
        state = graph.invoke(request, config=config, context=context)
    return {
        "run_id": run_id,
        "at": moment.isoformat(),
        "incidents": state.get("triages") or [],
        "tickets": state.get("tickets") or [],
        "resolved_incidents": state.get("resolved_incidents") or [],
        "model": state.get("model"),
        "usage": state.get("usage") or {},
        "warnings": state.get("warnings") or [],
    }
