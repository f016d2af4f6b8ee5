"""Wiring of the escalation agent: settings → TriageSettings (routing table, default owner, lookback), the LLM
(FEEDBACKLOOP_LLM_*; none = the rules triage) and the ticket sinks; one entry point for the worker, the CLI and
the HTTP route."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from agents.escalation.context import EscalationAgentContext
from agents.escalation.runner import run_escalation_agent
from feedbackloop.retro_agent import llm_config
from feedbackloop.settings import Settings
from feedbackloop.tickets import sinks_from_settings
from store.database import Database
from tools.escalation.model import EscalationInputError
from tools.escalation.triage.model import Owner, Route, TriageSettings
from tools.escalation.triage.record import stored_triage


def _utcnow() -> datetime:
    return datetime.now(UTC)


def triage_settings(settings: Settings) -> TriageSettings:
    try:
        routes = tuple(Route.from_dict(dict(route)) for route in settings.escalation_routes)
    except (TypeError, ValueError) as error:
        raise EscalationInputError("escalation_routes", str(error)) from None
    return TriageSettings(
        lookback_hours=settings.escalation_triage_lookback_hours,
        routes=routes,
        default_owner=Owner(settings.escalation_owner_team, settings.escalation_owner_channel),
    )


def agent_context(
    database: Database, settings: Settings, *, clock: Callable[[], datetime] = _utcnow
) -> EscalationAgentContext:
    return EscalationAgentContext(
        database=database,
        sinks=sinks_from_settings(settings),
        settings=triage_settings(settings),
        llm=llm_config(settings),
        ticket_after_minutes=settings.escalation_ticket_after_minutes,
        clock=clock,
    )


def run_triage_agent(
    database: Database,
    settings: Settings,
    escalation_ids: Sequence[str] | None = None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> dict[str, Any]:
    """The agent's whole result: incidents, tickets, resolved incidents, model, usage, warnings."""
    context = agent_context(database, settings, clock=clock)
    return run_escalation_agent(context, database.url, escalation_ids, at=clock())


def run_triage(
    database: Database,
    settings: Settings,
    escalation_ids: Sequence[str] | None = None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> list[dict[str, Any]]:
    """Triage the incidents holding `escalation_ids` (every active escalation when None); their JSON shapes."""
    if escalation_ids is not None:  # an unknown id is a 404 / exit 2 before any graph runs
        from tools.escalation.service import EscalationService

        service = EscalationService(database)
        for escalation_id in escalation_ids:
            service.get(escalation_id)
    incidents: list[dict[str, Any]] = run_triage_agent(database, settings, escalation_ids, clock=clock)[
        "incidents"
    ]
    return incidents


def triage_of(database: Database, escalation_id: str) -> dict[str, Any] | None:
    return stored_triage(database, escalation_id)
