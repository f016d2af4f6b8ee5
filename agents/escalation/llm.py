"""The escalation agent's LLM call: one structured call per incident, in the retro agent's call style
(agents.retro.llm: the same chat model, structured-output methods, transient-error rule and untrusted-text
fence). Raises only transient errors (for the node's RetryPolicy); every other failure is `TriageOutcome.error`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from agents.retro.llm import (
    FENCE_CLOSE,
    FENCE_OPEN,
    LLMConfig,
    build_chat_model,
    describe_validation_error,
    is_transient_llm_error,
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
    try:
        if llm.structured_output == "json_object_schema":
            schema = TriageDraft.model_json_schema()
            message = model.bind(response_format={"type": "json_object", "schema": schema}).invoke(messages)
            usage = _usage(message)
            try:
                return TriageOutcome(TriageDraft.model_validate_json(message.text), None, usage, llm.model)
            except ValidationError as exc:
                return TriageOutcome(None, describe_validation_error(exc), usage, llm.model)
        runnable = model.with_structured_output(TriageDraft, method=llm.structured_output, include_raw=True)
        result = runnable.invoke(messages)
    except Exception as exc:
        if is_transient_llm_error(exc):
            raise
        return TriageOutcome(None, f"{type(exc).__name__}: {exc}"[:300], _usage(None), llm.model)
    return _parsed(result, llm.model)


def _parsed(result: Any, model_name: str) -> TriageOutcome:
    """Never trust a None or the parsed object's type (REFERENCE.md §5): re-validate what came back."""
    raw = result.get("raw") if isinstance(result, dict) else None
    usage = _usage(raw)
    if isinstance(result, dict) and result.get("parsing_error") is not None:
        return TriageOutcome(None, f"unparseable answer: {result['parsing_error']}"[:300], usage, model_name)
    parsed = result.get("parsed") if isinstance(result, dict) else None
    if parsed is None:
        return TriageOutcome(None, "the model answered without structured output", usage, model_name)
    try:
        data = parsed if isinstance(parsed, dict) else parsed.model_dump()
        return TriageOutcome(TriageDraft.model_validate(data), None, usage, model_name)
    except (ValidationError, AttributeError) as exc:
        error = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        return TriageOutcome(None, error, usage, model_name)


def _usage(message: object) -> dict[str, int]:
    metadata = getattr(message, "usage_metadata", None) or {}
    return {"llm_calls": 1, "input_tokens": int(metadata.get("input_tokens") or 0),
            "output_tokens": int(metadata.get("output_tokens") or 0)}  # fmt: skip


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
