"""Triage of escalations without an LLM: load them (with the open escalations of the same personas, which may be
part of the same incident), gather the context, correlate into incidents, route, and write the rules triage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from store.database import Database
from tools.escalation.model import Escalation
from tools.escalation.service import EscalationService
from tools.escalation.triage.context import gather_context
from tools.escalation.triage.correlate import correlate
from tools.escalation.triage.model import Incident, Triage, TriageContext, TriageSettings
from tools.escalation.triage.routing import route
from tools.escalation.triage.rules import rules_triage
from tools.retro.model import Signal

ACTIVE = ("pending", "firing", "acknowledged")


@dataclass(frozen=True, slots=True)
class TriagePlan:
    context: TriageContext
    incidents: tuple[Incident, ...]  # only those holding at least one requested escalation


def load_escalations(database: Database, escalation_ids: Sequence[str] | None) -> list[Escalation]:
    """The requested escalations (all active ones when None) plus the active ones sharing a persona with them."""
    service = EscalationService(database)
    active = [e for e in service.escalations() if e.status.value in ACTIVE]
    requested = active if escalation_ids is None else [service.get(i) for i in dict.fromkeys(escalation_ids)]
    personas = {p for e in requested for p in e.affected_personas}
    chosen = {e.escalation_id: e for e in requested}
    for escalation in active:
        if set(escalation.affected_personas) & personas:
            chosen.setdefault(escalation.escalation_id, escalation)
    return sorted(chosen.values(), key=lambda e: (e.opened_at, e.escalation_id))


def plan_triage(
    database: Database,
    escalation_ids: Sequence[str] | None,
    settings: TriageSettings,
    at: datetime,
) -> TriagePlan:
    escalations = load_escalations(database, escalation_ids)
    with database.read() as connection:
        context = gather_context(connection, escalations, at, settings)
    wanted = set(escalation_ids) if escalation_ids is not None else {e.escalation_id for e in escalations}
    incidents = tuple(
        i for i in correlate(context, settings.lookback_hours) if wanted & set(i.escalation_ids)
    )
    return TriagePlan(context, incidents)


def incident_evidence(incident: Incident, context: TriageContext) -> tuple[Signal, ...]:
    """The evidence an incident's triage may cite: its escalations, the deployments, experiments and the survey
    records of its personas."""
    members = [f for f in context.escalations if f.escalation_id in incident.escalation_ids]
    own = {f.evidence_id for f in members}
    personas = {f.persona for f in members}
    return tuple(
        s
        for s in context.evidence
        if s.id in own
        or s.kind in ("deployment", "experiment")
        or (s.kind in ("survey_shift", "survey_theme") and s.persona in personas)
    )


def rules_result(incident: Incident, context: TriageContext, settings: TriageSettings) -> Triage:
    members = [f for f in context.escalations if f.escalation_id in incident.escalation_ids]
    return Triage(
        incident=incident,
        draft=rules_triage(incident, context),
        owner=route(members, settings),
        source="rules",
        evidence=incident_evidence(incident, context),
    )


def triage_with_rules(
    database: Database, escalation_ids: Sequence[str] | None, settings: TriageSettings, at: datetime
) -> list[Triage]:
    """Triage (rules) and record every incident holding one of `escalation_ids` (every active one when None)."""
    from tools.escalation.triage.record import record_triage

    plan = plan_triage(database, escalation_ids, settings, at)
    return [record_triage(database, rules_result(i, plan.context, settings), at) for i in plan.incidents]
