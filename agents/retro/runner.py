"""Start, schedule, run, resume and approve retros on the configured database's checkpointer (thread id = retro
id).

The retros table says where each run stands (scheduled, running, awaiting_approval, completed, failed) and keeps
the result; the checkpoint holds the progress a resumed run continues from. A scheduled retro (a deployment's,
recorded by a post-deploy hook) waits for its `run_after`; the worker then claims it (scheduled → running in one
statement, so of several workers exactly one runs it) and runs it.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
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

DUE_RETROS_PER_PASS = 3  # scheduled retros one worker pass starts at most (each may take minutes with an LLM)
MAX_CONCURRENT_GATHERS = 3  # gather branches at once: each holds a database connection
# A run's claim on its retro. Longer than any run (six LLM attempts at the timeout bound it), so a claim this old
# belongs to a process that died, and `retro resume` may take it over.
RUN_LEASE = timedelta(minutes=30)
# A retro left `running` with no run claim this long was started by a process that died before running it.
ORPHAN_AFTER = timedelta(minutes=10)
RESUME = object()  # graph input: continue from the last checkpoint
GraphInput = RetroState | Command[Any] | object | None


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

    def schedule(self, request: RetroRequest, run_after: datetime, retro_id: str | None = None) -> str:
        """Record a retro that the worker starts once `run_after` has passed (a deployment's, after its bake
        window). The request is validated now, as of `run_after` (a bake window ending then is fine; the runner's
        refusal of a window that has not ended applies when it runs). A retro already recorded under `retro_id`
        (a retried hook) is left as it is."""
        window = window_of_request(self.context.database, request, now=max(run_after, self.context.clock()))
        retro_id = retro_id or f"retro-{uuid.uuid4().hex[:12]}"
        now = self.context.clock()
        values = {
            "id": retro_id, "kind": window.kind, "sprint_id": window.sprint_id, "version": window.version,
            "window_start": window.start, "window_end": window.end, "status": "scheduled", "request": dict(request),
            "result": None, "error": None, "run_after": run_after, "created_at": now, "updated_at": now,
        }  # fmt: skip
        with self.context.database.write() as connection:
            retro_sql.create_retro_once(connection, values)
        return retro_id

    def claim_due(self, retro_id: str) -> bool:
        """Take a scheduled retro whose run_after has passed for running here (scheduled → running); False when
        it is not due, not scheduled, or another worker took it first."""
        with self.context.database.write() as connection:
            return retro_sql.claim_scheduled(connection, retro_id, self.context.clock())

    def run_due(self, limit: int = DUE_RETROS_PER_PASS) -> list[dict[str, Any]]:
        """Run up to `limit` scheduled retros that are due, one after the other, each claimed first. A failure is
        recorded on its retro (status failed, the message) and reported, never raised."""
        with self.context.database.read() as connection:
            due = retro_sql.due_scheduled_retros(connection, self.context.clock(), limit)
        return [self.run_claimed(retro_id) for retro_id in due if self.claim_due(retro_id)]

    def resume_orphaned(self, limit: int = DUE_RETROS_PER_PASS) -> list[dict[str, Any]]:
        """Resume up to `limit` retros whose run nobody holds: status running but unclaimed (or claimed longer ago
        than the lease) and untouched for ORPHAN_AFTER. A run another process took meanwhile is left to it."""
        now = self.context.clock()
        with self.context.database.read() as connection:
            orphaned = retro_sql.orphaned_running_retros(
                connection, now - ORPHAN_AFTER, now - RUN_LEASE, limit
            )
        outcomes: list[dict[str, Any]] = []
        for retro_id in orphaned:
            try:
                result = self.resume(retro_id)
            except RetroStateError as exc:
                outcomes.append({"retro_id": retro_id, "status": "running elsewhere", "error": str(exc)})
                continue
            outcomes.append(
                {"retro_id": retro_id, "status": result.get("status", "completed"), "error": None}
            )
        return outcomes

    def run_claimed(self, retro_id: str) -> dict[str, Any]:
        """Run a retro this process claimed with `claim_due`: its id, status and the error when it failed."""
        try:
            result = self.run(retro_id)
        except RetroStateError as exc:  # another process runs it: its run, not ours to mark failed
            return {"retro_id": retro_id, "status": "running elsewhere", "error": str(exc)}
        except Exception as exc:  # recorded on the retro; the caller (the worker) goes on with the next one
            error = f"{type(exc).__name__}: {exc}"
            self._record(retro_id, "failed", None, error)
            return {"retro_id": retro_id, "status": "failed", "error": error}
        return {"retro_id": retro_id, "status": result.get("status", "completed"), "error": None}

    def run(self, retro_id: str) -> dict[str, Any]:
        return self._invoke(retro_id, self._initial_state(retro_id, self._row(retro_id)))

    def resume(self, retro_id: str) -> dict[str, Any]:
        """Continue a run that stopped (crash, kill) from its last checkpoint. A completed run returns its result
        (after filing what a sink could not take before); one waiting for approval stays waiting (resuming never
        approves anything)."""
        row = self._row(retro_id)
        if row["status"] == "scheduled":  # never started: start it now if it is due
            if not self.claim_due(retro_id):
                run_after = row["run_after"].isoformat() if row["run_after"] else "its bake window"
                raise RetroStateError(
                    "retro_id",
                    f"retro {retro_id} is scheduled to run after {run_after}; the worker starts it then",
                )
            return self.run(retro_id)
        if row["status"] == "completed" and row["result"] is not None:
            if row["result"].get("filing_failures"):
                return self._refile(retro_id)
            return dict(row["result"])
        if row["status"] == "awaiting_approval" and row["result"] is not None:
            return dict(row["result"])
        return self._invoke(retro_id, RESUME)

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
        answer = {"retro_id": retro_id, "kind": row["kind"], "status": row["status"], "error": row["error"]}
        if row["run_after"] is not None:  # a scheduled retro says when it runs
            answer["run_after"] = row["run_after"].isoformat()
        return answer

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

    def _refile(self, retro_id: str) -> dict[str, Any]:
        """File what a completed retro could not (a sink was down): file_tickets and report run again; tickets
        already filed are found in ticket_filings, not filed twice."""
        with checkpointer(self.context.database.url) as saver:
            graph = build_graph(saver, llm_retry_seconds=self.context.llm_retry_seconds)
            graph.update_state(_config(retro_id), {"filing_failures": []}, as_node="approve")
        return self._invoke(retro_id, None)

    def _invoke(self, retro_id: str, graph_input: GraphInput) -> dict[str, Any]:
        """Run the graph while holding the retro's run claim, so two processes never run one retro at once."""
        owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        with self.context.database.write() as connection:
            claimed = retro_sql.claim_run(connection, retro_id, owner, self.context.clock(), RUN_LEASE)
            row = None if claimed else retro_sql.retro(connection, retro_id)
            holder = row["run_owner"] if row is not None else None
            if holder and _died_here(holder):  # killed on this machine: no need to wait for the lease
                claimed = retro_sql.take_over_run(connection, retro_id, holder, owner, self.context.clock())
        if not claimed:
            raise RetroStateError(
                "retro_id",
                f"retro {retro_id} is being run by another process; if that process died, resume it after "
                f"{RUN_LEASE.total_seconds() / 60:.0f} minutes",
            )
        try:
            return self._invoke_claimed(retro_id, graph_input)
        finally:
            with self.context.database.write() as connection:
                retro_sql.release_run(connection, retro_id, owner)

    def _invoke_claimed(self, retro_id: str, graph_input: GraphInput) -> dict[str, Any]:
        config = _config(retro_id)
        with checkpointer(self.context.database.url) as saver:
            graph = build_graph(saver, llm_retry_seconds=self.context.llm_retry_seconds)
            if (
                graph_input is RESUME
            ):  # from the last checkpoint; a run killed before its first one starts over
                started = bool(graph.get_state(config).values)
                graph_input = None if started else self._initial_state(retro_id, self._row(retro_id))
            self._record_status(retro_id, "running")
            try:
                graph.invoke(graph_input, config, context=self.context, durability="sync")
            except Exception as exc:
                self._record(retro_id, "failed", None, f"{type(exc).__name__}: {exc}")
                raise
            snapshot = graph.get_state(config)
        values: RetroState = snapshot.values  # type: ignore[assignment]
        if snapshot.interrupts:  # stopped at the approval interrupt
            result = build_result(values, status="awaiting_approval")
            self._record(retro_id, "awaiting_approval", result, None)
            return result
        return dict(values.get("result") or build_result(values, status="completed"))

    def _record_status(self, retro_id: str, status: str) -> None:
        with self.context.database.write() as connection:
            retro_sql.update_retro(
                connection, retro_id, {"status": status, "updated_at": self.context.clock()}
            )

    def _record(self, retro_id: str, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        with self.context.database.write() as connection:
            retro_sql.update_retro(
                connection,
                retro_id,
                {"status": status, "result": result, "error": error, "updated_at": self.context.clock()},
            )


def _config(retro_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": retro_id}, "max_concurrency": MAX_CONCURRENT_GATHERS}


def _died_here(owner: str) -> bool:
    """Whether a run claim belongs to a process of this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname()[:40] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
