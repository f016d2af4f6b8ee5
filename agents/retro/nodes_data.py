"""The deterministic data phase: resolve the window, gather each tool family (fan-out), detect signals, map them
to journey theory. No LLM here; every number the retro states is produced in this phase."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from agents.retro.context import RetroContext
from agents.retro.state import GatherTask, RetroState
from agents.retro.windows import window_from_state, window_to_state
from tools.journey import map_signals
from tools.retro.gather import FAMILIES, gather
from tools.retro.model import Signal
from tools.retro.signals import detect_signals
from tools.retro.window import deployment_window, sprint_window


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def resolve_window(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    request = state["request"]
    if request["kind"] == "deployment":
        with runtime.context.database.read() as connection:
            window = deployment_window(
                connection,
                str(request.get("version") or ""),
                bake_hours=int(request.get("bake_hours") or 24),
                deployed_at=_when(request.get("deployed_at")),  # type: ignore[arg-type]
            )
    else:
        start, end = _when(request.get("start")), _when(request.get("end"))
        assert start is not None and end is not None  # the runner validated the request
        window = sprint_window(start, end, sprint_id=request.get("sprint_id"))
    return {"window": window_to_state(window)}


def fan_out(state: RetroState) -> list[Send]:
    """One gather branch per tool family; the run's max_concurrency bounds how many run at once."""
    return [Send("gather_family", GatherTask(family=family, window=state["window"])) for family in FAMILIES]


def gather_family(task: GatherTask, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    window = window_from_state(task["window"])
    with runtime.context.database.read() as connection:
        data = gather(connection, task["family"], window, runtime.context.gather)
    return {"gathered": {task["family"]: data}}


def detect(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    window = window_from_state(state["window"])
    signals = detect_signals(state.get("gathered") or {}, window, runtime.context.gather)
    return {"signals": [signal.as_dict() for signal in signals]}


def map_theory(state: RetroState) -> dict[str, Any]:
    signals = [Signal.from_dict(data) for data in state.get("signals") or []]
    return {"mappings": [mapping.as_dict() for mapping in map_signals(signals)]}
