"""The retro graph:

resolve_window → gather_family ×6 (Send fan-out) → detect → map_theory → synthesise → validate_grounding
(→ repair → validate_grounding, once) → prioritise → dedupe → approve (optional interrupt) → file_tickets → report

The LLM nodes retry transient failures (timeouts, 429, 5xx) through their RetryPolicy; when the retries are
spent their error handler sends the run on to validate_grounding, where the rules synthesise instead.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from agents.retro import nodes_backlog, nodes_data, nodes_synthesis
from agents.retro.context import RetroContext
from agents.retro.llm import is_transient_llm_error
from agents.retro.state import RetroState

LLM_ATTEMPTS = 3


def llm_retry(initial_seconds: float = 1.0) -> RetryPolicy:
    """Timeouts, connection errors, 429 and 5xx are retried (waits of initial, then 2 × initial, with jitter);
    a ValidationError or a 400 is not: asking again would get the same answer."""
    return RetryPolicy(
        max_attempts=LLM_ATTEMPTS,
        initial_interval=initial_seconds,
        backoff_factor=2.0,
        retry_on=is_transient_llm_error,
    )


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None, *, llm_retry_seconds: float = 1.0
) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(RetroState, context_schema=RetroContext)
    retry = llm_retry(llm_retry_seconds)
    graph.add_node("resolve_window", nodes_data.resolve_window)
    graph.add_node("gather_family", nodes_data.gather_family)  # type: ignore[call-overload]  # takes a GatherTask
    graph.add_node("detect", nodes_data.detect)
    graph.add_node("map_theory", nodes_data.map_theory)
    graph.add_node(
        "synthesise",
        nodes_synthesis.synthesise,
        retry_policy=retry,
        error_handler=nodes_synthesis.llm_failed,
    )
    graph.add_node(
        "repair", nodes_synthesis.repair, retry_policy=retry, error_handler=nodes_synthesis.llm_failed
    )
    graph.add_node(
        "validate_grounding", nodes_synthesis.validate_grounding, destinations=("repair", "prioritise")
    )
    graph.add_node("prioritise", nodes_backlog.prioritise)
    graph.add_node("dedupe", nodes_backlog.dedupe)
    graph.add_node("approve", nodes_backlog.approve)
    graph.add_node("file_tickets", nodes_backlog.file_tickets)
    graph.add_node("report", nodes_backlog.report)

    graph.add_edge(START, "resolve_window")
    graph.add_conditional_edges("resolve_window", nodes_data.fan_out, ["gather_family"])
    graph.add_edge("gather_family", "detect")
    graph.add_edge("detect", "map_theory")
    graph.add_edge("map_theory", "synthesise")
    graph.add_edge("synthesise", "validate_grounding")
    graph.add_edge("repair", "validate_grounding")
    graph.add_edge("prioritise", "dedupe")
    graph.add_edge("dedupe", "approve")
    graph.add_edge("approve", "file_tickets")
    graph.add_edge("file_tickets", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)
