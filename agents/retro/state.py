"""The retro graph's state. Every value is plain JSON (dicts, lists, strings, numbers), so checkpoints load on
any saver and schema changes stay backward compatible; typed objects (Signal, Synthesis, BacklogItem) are rebuilt
from it inside the nodes."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_families(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """The gather fan-out: each branch adds its family's data under its own key."""
    return {**(left or {}), **(right or {})}


def add_usage(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    total = dict(left or {})
    for key, value in (right or {}).items():
        total[key] = total.get(key, 0) + value
    return total


class RetroRequest(TypedDict, total=False):
    kind: str  # sprint | deployment
    start: str | None  # ISO 8601
    end: str | None
    sprint_id: str | None
    version: str | None
    bake_hours: int
    deployed_at: str | None  # ISO 8601; default: the time of the version's first deployment event
    approve: str  # auto | ask


class RetroState(TypedDict, total=False):
    retro_id: str
    request: RetroRequest
    window: dict[str, Any]  # RetroWindow, ISO datetimes
    gathered: Annotated[dict[str, Any], merge_families]
    signals: list[dict[str, Any]]
    mappings: list[dict[str, Any]]
    llm_synthesis: dict[str, Any] | None  # what the LLM answered (schema-valid), before grounding
    llm_error: str | None
    repairs: int
    synthesis: dict[str, Any]  # the grounded synthesis the backlog is built from
    synthesis_source: str  # llm | rules
    model: str | None
    grounding: dict[str, Any]
    backlog: list[dict[str, Any]]
    approved_ids: list[str]
    filed: list[dict[str, Any]]
    filing_failures: list[dict[str, Any]]  # {id, sink, error, transient}: filed again by `retro resume`
    usage: Annotated[dict[str, int], add_usage]
    warnings: Annotated[list[str], operator.add]
    result: dict[str, Any]


class GatherTask(TypedDict):
    """What one gather branch receives through Send."""

    family: str
    window: dict[str, Any]
