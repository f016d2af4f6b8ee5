"""Wiring of the escalation triage: settings → TriageSettings (routing table, default owner, lookback), and one
entry point the worker, the CLI and the HTTP route call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from feedbackloop.settings import Settings
from store.database import Database
from tools.escalation.model import EscalationInputError
from tools.escalation.triage.model import Owner, Route, TriageSettings
from tools.escalation.triage.record import stored_triage
from tools.escalation.triage.service import triage_with_rules


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


def run_triage(
    database: Database,
    settings: Settings,
    escalation_ids: Sequence[str] | None = None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> list[dict[str, Any]]:
    """Triage the incidents holding `escalation_ids` (every active escalation when None); their JSON shapes."""
    triages = triage_with_rules(database, escalation_ids, triage_settings(settings), clock())
    return [triage.as_dict() for triage in triages]


def triage_of(database: Database, escalation_id: str) -> dict[str, Any] | None:
    return stored_triage(database, escalation_id)
