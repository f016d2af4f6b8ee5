"""What the escalation nodes need besides the state, injected per run through LangGraph's `context=`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.retro.llm import LLMConfig
from store.database import Database
from tools.escalation.triage.model import TriageSettings
from tools.tickets.base import TicketSink


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EscalationAgentContext:
    database: Database
    sinks: Sequence[TicketSink] = ()
    settings: TriageSettings = field(default_factory=TriageSettings)
    llm: LLMConfig | None = None  # None: the rules triage (offline)
    llm_client: Any = None  # a chat model to use instead of building one from `llm` (tests' fake models)
    ticket_after_minutes: int = 60  # HIGH/CRITICAL escalations firing this long get a backlog ticket
    filing_lease: timedelta = timedelta(minutes=10)
    clock: Callable[[], datetime] = _utcnow
