"""The escalation agent's LLM call: one structured call per incident through the retro agent's call layer
(agents.retro.llm.call_structured: the same chat model, structured-output methods, error accounting,
transient-error rule and untrusted-text fence). Raises only transient errors (for the node's RetryPolicy);
every other failure is `TriageOutcome.error`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agents.retro.llm import (
    FENCE_CLOSE,
    FENCE_OPEN,
    LLMConfig,
    build_chat_model,
    call_structured,
    neutralise_untrusted,
)
from prompts import render
from tools.escalation.triage.model import Incident, TriageContext, TriageDraft
from tools.retro.model import Signal
from tools.retro.numbers import format_change, format_number, format_p_value

MAX_TEXTS_PER_RECORD = 3


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    draft: TriageDraft | None
    error: str | None
    usage: dict[str, int]
    model: str


def triage_with_llm(
    incident: Incident,
    context: TriageContext,
    evidence: Sequence[Signal],
    llm: LLMConfig,
    *,
    client: BaseChatModel | None = None,
) -> TriageOutcome:
    model = client if client is not None else build_chat_model(llm)
    messages = build_messages(incident, context, evidence)
    answer = call_structured(model, messages, TriageDraft, llm.structured_output)
    return TriageOutcome(answer.parsed, answer.error, answer.usage, llm.model)


def build_messages(
    incident: Incident, context: TriageContext, evidence: Sequence[Signal]
) -> list[BaseMessage]:
    members = [f for f in context.escalations if f.escalation_id in incident.escalation_ids]
    escalations = [
        json.dumps(
            {
                "evidence_id": f.evidence_id,
                "type": f.type,
                "severity": f.severity,
                "status": f.status,
                "metric": f.metric,
                "persona": f.persona,
                "change_began": f.change_from.isoformat(),
                "change_dated_by": f.change_point_source,
            },
            ensure_ascii=False,
        )
        for f in members
    ]
    correlation = [
        f"{f.evidence_id}: "
        + (
            f"deployment {incident.causes[f.escalation_id]}"
            if incident.causes.get(f.escalation_id)
            else "no deployment in the lookback window"
        )
        for f in members
    ]
    texts = [
        (signal.id, json.dumps(neutralise_untrusted(text), ensure_ascii=False))
        for signal in evidence
        for text in signal.text[:MAX_TEXTS_PER_RECORD]
    ]
    system = render("escalation_triage_system.txt.j2", fence_open=FENCE_OPEN, fence_close=FENCE_CLOSE)
    user = render(
        "escalation_triage_user.txt.j2", escalations=escalations, correlation=correlation, texts=texts,
        evidence=[json.dumps(evidence_row(s), ensure_ascii=False) for s in evidence],
        fence_open=FENCE_OPEN, fence_close=FENCE_CLOSE,
    )  # fmt: skip
    return [SystemMessage(system), HumanMessage(user)]


def evidence_row(signal: Signal) -> dict[str, Any]:
    """An evidence record as the prompt shows it: numbers formatted as the grounding check reads them."""
    row: dict[str, Any] = {
        "id": signal.id,
        "kind": signal.kind,
        "detail": neutralise_untrusted(signal.detail),
    }
    for key in ("metric", "persona", "subject"):
        if getattr(signal, key):
            row[key] = getattr(signal, key)
    relative = signal.unit != "nps_points"
    numbers = {"value": format_number(signal.value), "baseline": format_number(signal.baseline),
               "change": format_change(signal.change, relative=relative), "p": format_p_value(signal.p_value),
               "n": format_number(signal.n)}  # fmt: skip
    row |= {key: value for key, value in numbers.items() if value is not None}
    facts = {
        k: v for k, v in signal.facts.items() if k in ("deployed_at", "started_at", "severity", "status")
    }
    return row | facts
