"""Running the escalation agent: one graph run per call, checkpointed on the configured database (thread id = the
run id), so a run killed part-way resumes from its last finished node and files no ticket twice."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from psycopg import Connection
from sqlalchemy.engine import make_url

from agents.escalation.context import EscalationAgentContext
from agents.escalation.graph import build_graph
from agents.retro.checkpoint import checkpointer

SETUP_POLL_SECONDS = 0.05


@contextmanager
def _checkpointer(database_url: str) -> Iterator[BaseCheckpointSaver[str]]:
    """agents.retro.checkpoint's saver. On PostgreSQL its setup() is held under an advisory lock: two runs that
    set up the saver's tables at the same moment (a fresh database) would otherwise race on its migrations."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        with checkpointer(database_url) as saver:
            yield saver
        return
    key = int.from_bytes(hashlib.sha256(f"checkpoint-setup:{database_url}".encode()).digest()[:7], "big")
    with Connection.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                            autocommit=True) as lock:  # fmt: skip
        # Polled, never waited for inside a statement: setup() builds indexes CONCURRENTLY, which waits for every
        # open transaction, so a run blocked in pg_advisory_lock would deadlock with the one setting up.
        while not lock.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
            time.sleep(SETUP_POLL_SECONDS)
        try:
            stack = ExitStack()
            saver = stack.enter_context(checkpointer(database_url))
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (key,))
    with stack:
        yield saver


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
    with _checkpointer(database_url) as saver:
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
