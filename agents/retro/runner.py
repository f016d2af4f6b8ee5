"""Start, run, resume and approve retros on the configured database's checkpointer (thread id = retro id).

The retros table says where each run stands (running, awaiting_approval, completed, failed) and keeps the result;
the checkpoint holds the progress a resumed run continues from.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from agents.retro.checkpoint import checkpointer
from agents.retro.context import RetroContext
from agents.retro.graph import build_graph
from agents.retro.result import build_result
from agents.retro.state import RetroRequest, RetroState
from agents.retro.windows import window_of_request
from store.repositories import retros as retro_sql
from tools.retro.model import RetroWindow
from tools.retro.window import RetroInputError

MAX_CONCURRENT_GATHERS = 3  # gather branches at once: each holds a database connection


class RetroNotFoundError(LookupError):
    def __init__(self, retro_id: str) -> None:
        super().__init__(f"retro {retro_id!r} does not exist")
        self.retro_id = retro_id


class RetroStateError(RetroInputError):
    """Valid, but not now: approving a retro that is not waiting for approval (HTTP 409)."""


@dataclass
class RetroRunner:
    context: RetroContext

    def start(self, request: RetroRequest, retro_id: str | None = None) -> str:
        """Validate the request (RetroInputError names the field) and record the retro; nothing runs yet."""
        window = self._window(request)
        retro_id = retro_id or f"retro-{uuid.uuid4().hex[:12]}"
        now = self.context.clock()
        values = {
            "id": retro_id, "kind": window.kind, "sprint_id": window.sprint_id, "version": window.version,
            "window_start": window.start, "window_end": window.end, "status": "running", "request": dict(request),
            "result": None, "error": None, "created_at": now, "updated_at": now,
        }  # fmt: skip
        with self.context.database.write() as connection:
            if retro_sql.retro(connection, retro_id) is not None:
                raise RetroStateError("retro_id", f"retro {retro_id!r} exists already; resume it instead")
            retro_sql.create_retro(connection, values)
        return retro_id

    def run(self, retro_id: str) -> dict[str, Any]:
        return self._invoke(retro_id, self._initial_state(retro_id, self._row(retro_id)))

    def resume(self, retro_id: str) -> dict[str, Any]:
        """Continue a run that stopped (crash, kill) from its last checkpoint; a completed run returns its result
        and one waiting at the approval interrupt stays there (resuming never approves anything)."""
        row = self._row(retro_id)
        if row["status"] == "completed" and row["result"] is not None:
            return dict(row["result"])
        with checkpointer(self.context.database.url) as saver:
            snapshot = build_graph(saver, llm_retry_seconds=self.context.llm_retry_seconds).get_state(
                _config(retro_id)
            )
        if snapshot.interrupts:
            values: RetroState = snapshot.values  # type: ignore[assignment]
            result = build_result(values, status="awaiting_approval")
            self._record(retro_id, "awaiting_approval", result, None)
            return result
        self._record(retro_id, "running", row["result"], None)
        return self._invoke(retro_id, None if snapshot.values else self._initial_state(retro_id, row))

    def approve(self, retro_id: str, answer: str | list[str]) -> dict[str, Any]:
        """Answer the approval interrupt: "all", "none" or a list of backlog item ids (B1, B2 …).

        The status moves from awaiting_approval to running in one statement, so of two concurrent approvals
        (two clicks in Slack) one runs and the other is refused."""
        self._row(retro_id)
        with self.context.database.write() as connection:
            claimed = retro_sql.claim_status(
                connection, retro_id, "awaiting_approval", "running", self.context.clock()
            )
        if not claimed:
            status = self._row(retro_id)["status"]
            raise RetroStateError("retro_id", f"retro {retro_id} is {status}, not awaiting approval")
        return self._invoke(retro_id, Command(resume=answer))

    def result(self, retro_id: str) -> dict[str, Any]:
        row = self._row(retro_id)
        if row["result"] is not None:
            return dict(row["result"])
        return {"retro_id": retro_id, "kind": row["kind"], "status": row["status"], "error": row["error"]}

    # ---- internals ----

    def _window(self, request: RetroRequest) -> RetroWindow:
        return window_of_request(self.context.database, request, now=self.context.clock())

    @staticmethod
    def _initial_state(retro_id: str, row: Any) -> RetroState:
        return {"retro_id": retro_id, "request": row["request"], "warnings": [], "usage": {}}

    def _row(self, retro_id: str) -> Any:
        with self.context.database.read() as connection:
            row = retro_sql.retro(connection, retro_id)
        if row is None:
            raise RetroNotFoundError(retro_id)
        return row

    def _invoke(self, retro_id: str, graph_input: RetroState | Command[Any] | None) -> dict[str, Any]:
        config = _config(retro_id)
        with checkpointer(self.context.database.url) as saver:
            graph = build_graph(saver, llm_retry_seconds=self.context.llm_retry_seconds)
            try:
                graph.invoke(graph_input, config, context=self.context, durability="sync")
            except Exception as exc:
                self._record(retro_id, "failed", None, f"{type(exc).__name__}: {exc}")
                raise
            snapshot = graph.get_state(config)
        values: RetroState = snapshot.values  # type: ignore[assignment]
        if snapshot.next:  # stopped at the approval interrupt
            result = build_result(values, status="awaiting_approval")
            self._record(retro_id, "awaiting_approval", result, None)
            return result
        return dict(values.get("result") or build_result(values, status="completed"))

    def _record(self, retro_id: str, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        with self.context.database.write() as connection:
            retro_sql.update_retro(
                connection,
                retro_id,
                {"status": status, "result": result, "error": error, "updated_at": self.context.clock()},
            )


def _config(retro_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": retro_id}, "max_concurrency": MAX_CONCURRENT_GATHERS}
