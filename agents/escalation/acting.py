"""The escalation agent's side effects, in one node after every decision is made: record each triage, open a
backlog ticket for incidents with a HIGH/CRITICAL escalation firing long enough (exactly once per incident and
sink: the retro's filing claim), and write resolution summaries for incidents whose escalations all resolved."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from langgraph.runtime import Runtime

from agents.escalation.context import EscalationAgentContext
from agents.escalation.state import TriageState
from agents.retro.context import RetroContext
from agents.retro.tickets import file_item
from tools.escalation.service import EscalationService
from tools.escalation.triage.model import Owner, Triage, TriageDraft
from tools.escalation.triage.record import record_triage, summarise_resolutions
from tools.escalation.triage.state_codec import incident_from_dict
from tools.escalation.triage.ticket import due_escalations, incident_ticket
from tools.retro.model import Signal


def act(state: TriageState, runtime: Runtime[EscalationAgentContext]) -> dict[str, Any]:
    agent = runtime.context
    at = datetime.fromisoformat(state["at"])
    recorded: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    warnings: list[str] = []
    service = EscalationService(agent.database)
    for data in state.get("triages") or []:
        triage = record_triage(agent.database, _triage(data), agent.clock())
        stored = data | {"incident_id": triage.incident.incident_id}
        recorded.append(stored)
        due = due_escalations(
            [service.get(i) for i in triage.incident.escalation_ids], at, agent.ticket_after_minutes
        )
        if due and agent.sinks:
            filing = RetroContext(database=agent.database, sinks=agent.sinks, filing_lease=agent.filing_lease,
                                  clock=agent.clock)  # fmt: skip
            filed = file_item(filing, triage.incident.incident_id, incident_ticket(stored, due))
            tickets += [ticket | {"incident_id": triage.incident.incident_id} for ticket in filed.tickets]
            warnings += filed.warnings
    resolved = summarise_resolutions(agent.database, agent.clock())
    return {"triages": recorded, "tickets": tickets, "resolved_incidents": resolved, "warnings": warnings}


def _triage(data: dict[str, Any]) -> Triage:
    incident = incident_from_dict(
        {"incident_id": data["incident_id"], "escalation_ids": data["escalation_ids"], "causes": {}}
    )
    draft = TriageDraft(
        summary=data["summary"], probable_causes=data["probable_causes"], next_steps=data["next_steps"]
    )
    triage = Triage(
        incident=incident, draft=draft, owner=Owner(**data["owner"]), source=data["triage"],
        evidence=tuple(Signal.from_dict(e) for e in data["evidence"]), warnings=tuple(data.get("warnings") or ()),
    )  # fmt: skip
    return replace(triage)
