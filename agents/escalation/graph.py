"""The escalation agent's graph:

load → gather → correlate → triage (LLM, when configured) → validate (grounding; rules for what is invalid) → act

The triage node retries transient LLM failures through its RetryPolicy; when the retries are spent its error
handler sends the run on to validate, where the rules triage every incident.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from agents.escalation import acting, nodes
from agents.escalation.context import EscalationAgentContext
from agents.escalation.state import TriageState
from agents.retro.llm import is_transient_llm_error


def llm_retry(initial_seconds: float = 1.0) -> RetryPolicy:
    """Three attempts with exponential backoff, on transient failures only (retry_on is explicit: the default
    would retry a 400 and not a timeout wrapped by langchain; REFERENCE.md §5)."""
    return RetryPolicy(
        max_attempts=3, initial_interval=initial_seconds, backoff_factor=2.0, retry_on=is_transient_llm_error
    )


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None, *, retry_initial_seconds: float = 1.0
) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(TriageState, context_schema=EscalationAgentContext)
    graph.add_node("load", nodes.load)
    graph.add_node("gather", nodes.gather)
    graph.add_node("correlate", nodes.correlate)
    graph.add_node(
        "triage", nodes.triage, retry_policy=llm_retry(retry_initial_seconds), error_handler=nodes.llm_failed
    )
    graph.add_node("validate", nodes.validate)
    graph.add_node("act", acting.act)
    graph.add_edge(START, "load")
    graph.add_edge("load", "gather")
    graph.add_edge("gather", "correlate")
    graph.add_edge("correlate", "triage")
    graph.add_edge("triage", "validate")
    graph.add_edge("validate", "act")
    graph.add_edge("act", END)
    return graph.compile(checkpointer=checkpointer)
