"""The rules triage: the same output schema as the LLM's (TriageDraft), written from templates over the evidence.
Every number it writes is a value of an evidence record it cites, so it always passes the grounding check."""

from __future__ import annotations

from tools.escalation.triage.model import (
    EscalationFacts,
    Incident,
    ProbableCause,
    TriageContext,
    TriageDraft,
)
from tools.retro.model import Signal
from tools.retro.numbers import format_number

# Counts in words: a digit in the text would be a number no evidence record holds.
COUNTS = ("No escalations", "One escalation", "Two escalations", "Three escalations", "Four escalations",
          "Five escalations", "Six escalations", "Seven escalations", "Eight escalations",
          "Nine escalations")  # fmt: skip
TYPE_STEPS = {
    "error_spike": "Look at the errors behind {metric} for {persona} since the change point, by feature and code path",
    "value_drop": "Find the journey step where {persona} lost value: compare {metric} by feature before and after",
    "support_load_increase": "Read the new support cases of {persona} and tag their causes",
    "retention_drop": "Check renewals and churn reasons of {persona} since the change point",
    "ltv_degradation": "Check which accounts of {persona} shrank or churned since the change point",
}


def rules_triage(incident: Incident, context: TriageContext) -> TriageDraft:
    members = [f for f in context.escalations if f.escalation_id in incident.escalation_ids]
    causes = _deployment_causes(incident, members, context) or _other_causes(members, context)
    return TriageDraft(
        summary=_summary(members, context, causes),
        probable_causes=causes[:5],
        next_steps=_next_steps(members, context, incident)[:8],
    )


def _measured(facts: EscalationFacts, context: TriageContext) -> str:
    signal = context.signal(facts.evidence_id)
    value = format_number(signal.value) if signal else None
    baseline = format_number(signal.baseline) if signal else None
    if value is None:
        return f"{facts.metric} for {facts.persona}"
    against = f" against {baseline}" if baseline is not None else ""
    return f"{facts.metric} for {facts.persona} at {value}{against}"


def _summary(members: list[EscalationFacts], context: TriageContext, causes: list[ProbableCause]) -> str:
    personas = ", ".join(sorted({f.persona for f in members}))
    count = COUNTS[len(members)] if len(members) < len(COUNTS) else "Many escalations"
    parts = [f"{count} for {personas}: " + "; ".join(
        f"{f.type.replace('_', ' ')} ({f.severity}, {_measured(f, context)}) [{f.evidence_id}]" for f in members
    ) + "."]  # fmt: skip
    if causes:
        parts.append(f"Probable cause: {causes[0].title} [{', '.join(causes[0].evidence_ids)}].")
    for signal in _nps_drops(members, context):
        parts.append(
            f"NPS of {signal.persona} is {format_number(signal.value)} against {format_number(signal.baseline)} "
            f"the week before [{signal.id}]."
        )
    return " ".join(parts)[:1200]


def _deployment_causes(
    incident: Incident, members: list[EscalationFacts], context: TriageContext
) -> list[ProbableCause]:
    by_deployment: dict[str, list[EscalationFacts]] = {}
    for facts in members:
        cause = incident.causes.get(facts.escalation_id)
        if cause is not None:
            by_deployment.setdefault(cause, []).append(facts)
    causes = []
    for evidence_id, explained in sorted(by_deployment.items(), key=lambda item: -len(item[1])):
        deployment = context.signal(evidence_id)
        assert deployment is not None
        dated = all(f.change_point_source != "opened" for f in explained)
        confidence = "high" if len(explained) == len(members) and dated else "medium"
        which = ", ".join(f"{f.metric} for {f.persona}" for f in explained)
        causes.append(ProbableCause(
            title=f"deployment {deployment.subject}",
            explanation=(
                f"{deployment.detail} at {deployment.facts['deployed_at']} is the last deployment before the "
                f"change began ({which}), and within the lookback window of it."
            ),
            evidence_ids=[evidence_id, *(f.evidence_id for f in explained)],
            confidence=confidence,
        ))  # fmt: skip
    return causes


def _other_causes(members: list[EscalationFacts], context: TriageContext) -> list[ProbableCause]:
    own = [f.evidence_id for f in members]
    experiments = [s for s in context.evidence if s.kind == "experiment"]
    if experiments:
        return [
            ProbableCause(
                title=f"experiment {s.subject}",
                explanation=f"No deployment precedes the change within the lookback window; {s.detail} at "
                f"{s.facts['started_at']} and may have changed what some users see.",
                evidence_ids=[s.id, *own],
                confidence="low",
            )
            for s in experiments
        ]
    return [
        ProbableCause(
            title="unknown: no deployment or experiment before the change",
            explanation="Nothing deployed or started within the lookback window before the change point; look "
            "for external causes (traffic mix, an integration partner, data collection).",
            evidence_ids=own,
            confidence="low",
        )
    ]


def _nps_drops(members: list[EscalationFacts], context: TriageContext) -> list[Signal]:
    personas = {f.persona for f in members}
    return [
        s
        for s in context.evidence
        if s.kind == "survey_shift" and s.persona in personas and s.change is not None and s.change < 0
    ]


def _next_steps(members: list[EscalationFacts], context: TriageContext, incident: Incident) -> list[str]:
    steps: list[str] = []
    for evidence_id in dict.fromkeys(c for c in incident.causes.values() if c is not None):
        deployment = context.signal(evidence_id)
        if deployment is not None:
            steps.append(
                f"Diff {deployment.subject} against the release before it; roll it back or switch the change off "
                "behind a flag if the diff touches the affected flow"
            )
    for facts in members:
        template = TYPE_STEPS.get(
            facts.type, "Break {metric} for {persona} down by feature since the change point"
        )
        step = template.format(metric=facts.metric, persona=facts.persona)
        if step not in steps:
            steps.append(step)
    steps.append("Acknowledge the escalations, and resolve them with a note once the metric has recovered")
    return steps
