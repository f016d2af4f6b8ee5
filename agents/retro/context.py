"""What the retro nodes need besides the state, injected per run through LangGraph's `context=` (no globals)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.retro.llm import LLMConfig
from store.database import Database
from tools.retro.gather import GatherSettings
from tools.tickets.base import TicketSink


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetroContext:
    database: Database
    sinks: Sequence[TicketSink]
    llm: LLMConfig | None = None  # None: the rules synthesise (offline)
    llm_client: Any = None  # a chat model to use instead of building one from `llm` (tests' fake models)
    gather: GatherSettings = field(default_factory=GatherSettings)
    effort_weeks_default: float = 2.0
    filing_lease: timedelta = timedelta(minutes=10)  # a crashed filer's claim is taken over after this
    clock: Callable[[], datetime] = _utcnow
    llm_retry_seconds: float = 1.0  # the LLM nodes' first wait between attempts (then doubled), tests use ~0
    # Attempts of the LLM nodes in flight, by (retro id, node): usage counts requests made, answered or not.
    llm_attempts: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)
