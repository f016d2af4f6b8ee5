"""Deterministic correlation: which escalations are one incident, and which deployment each points to.

- Probable deployment of an escalation: the deployment closest before its change point, at most `lookback_hours`
  before the change began (a deployment after the change cannot have caused it; one long before is not
  evidence). A change dated by a daily series began somewhere in its onset day, so a deployment that day counts.
- Grouping (union–find): two escalations are one incident when they share a probable deployment, or when they
  concern the same persona and their active spans [change point, resolved or now] overlap.
- Incident id: derived from the earliest escalation id of the group, so re-triage keeps the id while the group
  grows (the store maps a grown group onto the incident that already holds one of its escalations).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from tools.escalation.triage.model import EscalationFacts, Incident, TriageContext


def probable_deployment(facts: EscalationFacts, context: TriageContext, lookback_hours: float) -> str | None:
    """Evidence id of the deployment closest before the change point within the lookback, if any."""
    earliest = facts.change_from - timedelta(hours=lookback_hours)
    best: tuple[datetime, str] | None = None
    for evidence_id in context.deployment_ids:
        signal = context.signal(evidence_id)
        if signal is None:
            continue
        deployed_at = datetime.fromisoformat(str(signal.facts["deployed_at"]))
        if earliest <= deployed_at <= facts.change_point and (best is None or deployed_at > best[0]):
            best = (deployed_at, evidence_id)
    return best[1] if best else None


def correlate(context: TriageContext, lookback_hours: float) -> list[Incident]:
    escalations = list(context.escalations)
    causes = {f.escalation_id: probable_deployment(f, context, lookback_hours) for f in escalations}
    parent = {f.escalation_id: f.escalation_id for f in escalations}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for i, first in enumerate(escalations):
        for second in escalations[i + 1 :]:
            if _related(first, second, causes, context.at):
                parent[root(second.escalation_id)] = root(first.escalation_id)
    groups: dict[str, list[EscalationFacts]] = {}
    for facts in escalations:
        groups.setdefault(root(facts.escalation_id), []).append(facts)
    incidents = []
    for members in groups.values():
        members.sort(key=lambda f: (f.opened_at, f.escalation_id))
        ids = tuple(f.escalation_id for f in members)
        incidents.append(Incident(incident_id=incident_id(ids[0]), escalation_ids=ids,
                                  causes={key: causes[key] for key in ids}))  # fmt: skip
    return sorted(incidents, key=lambda incident: incident.escalation_ids[0])


def incident_id(first_escalation_id: str) -> str:
    return "inc_" + hashlib.sha256(first_escalation_id.encode()).hexdigest()[:20]


def _related(
    first: EscalationFacts, second: EscalationFacts, causes: dict[str, str | None], at: datetime
) -> bool:
    shared = causes[first.escalation_id]
    if shared is not None and shared == causes[second.escalation_id]:
        return True
    if first.persona != second.persona:
        return False
    first_end, second_end = first.resolved_at or at, second.resolved_at or at
    return first.change_from <= second_end and second.change_from <= first_end
