"""The deterministic data phase: resolve the window, gather each tool family (fan-out), detect signals, map them
to journey theory. No LLM here; every number the retro states is produced in this phase."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from agents.retro.context import RetroContext
from agents.retro.state import GatherTask, RetroState
from agents.retro.windows import window_from_state, window_of_request, window_to_state
from tools.journey import map_signals
from tools.retro.gather import FAMILIES, gather
from tools.retro.model import Signal
from tools.retro.signals import detect_signals


def resolve_window(state: RetroState, runtime: Runtime[RetroContext]) -> dict[str, Any]:
    window = window_of_request(runtime.context.database, state["request"], now=runtime.context.clock())
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
