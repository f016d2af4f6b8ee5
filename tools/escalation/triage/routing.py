"""Owner routing: the first route of the table whose set fields (metric, persona, type) all match one of the
incident's escalations — so order the table from the most specific route to the broadest — else the default."""

from __future__ import annotations

from collections.abc import Sequence

from tools.escalation.triage.model import EscalationFacts, Owner, TriageSettings

SEVERITY_ORDER = ("critical", "high", "medium", "low")


def route(escalations: Sequence[EscalationFacts], settings: TriageSettings) -> Owner:
    # The most severe escalation speaks first: its owner is the one the incident is routed to.
    ranked = sorted(escalations, key=lambda f: (SEVERITY_ORDER.index(f.severity), f.opened_at))
    for rule in settings.routes:
        for facts in ranked:
            wanted = {"metric": rule.metric, "persona": rule.persona, "type": rule.type}
            actual = {"metric": facts.metric, "persona": facts.persona, "type": facts.type}
            if all(value is None or value == actual[key] for key, value in wanted.items()):
                return Owner(rule.team, rule.channel)
    return settings.default_owner
