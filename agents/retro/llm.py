"""The retro's one LLM call: synthesise insights and backlog drafts over the deterministic signals.

The LLM writes words, tools write numbers: the prompt shows each signal with its numbers already formatted and
asks the model to cite signal ids and copy numbers exactly; the grounding validator (tools.retro.grounding)
holds it to that afterwards. Survey free text is untrusted: it is shown only inside a fenced data block whose
markers cannot be forged from inside the text.

Failure contract (for the synthesise node): transient failures — timeouts, connection errors, 429, 5xx — are
raised, so the node's `RetryPolicy(retry_on=is_transient_llm_error)` retries them; everything else (a 400,
malformed JSON, a schema violation, a model that answered in prose) comes back as `LLMOutcome.error`, never as
an exception and never as a silently empty synthesis.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, get_args

import openai
from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr, ValidationError

from prompts import render
from tools.retro.model import CanvasBlock, Impact, JourneyStage, Signal, Synthesis, TheoryMapping
from tools.retro.numbers import change_is_relative, format_change, format_number, format_p_value

# The same values as feedbackloop.settings.StructuredOutputMethod (agents may not import feedbackloop).
StructuredOutputMethod = Literal["json_schema", "json_object_schema", "function_calling"]
Answer = TypeVar("Answer", bound=BaseModel)  # the pydantic model a structured call asks for
STRUCTURED_OUTPUT_METHODS: tuple[str, ...] = get_args(StructuredOutputMethod)

# The local model has an 8k context: the prompt shows at most this many signals (see select_prompt_signals).
MAX_PROMPT_SIGNALS = 12
MAX_EXTRA_TEXT_SIGNALS = 3
MAX_TEXTS_PER_SIGNAL = 3
MAX_TEXT_CHARS = 280
MAX_DETAIL_CHARS = 160

FENCE_NAME = "UNTRUSTED_SURVEY_TEXT"
FENCE_OPEN = f"<<<{FENCE_NAME}"
FENCE_CLOSE = f"{FENCE_NAME}>>>"
_FENCE_NAME_PATTERN = re.compile(r"untrusted[\s_\-]*survey[\s_\-]*text", re.IGNORECASE)
_TRANSIENT_STATUS_CODES = frozenset({408, 429})

# Limits of the schema sent to grammar-constrained servers (json_object_schema; see grammar_schema).
GRAMMAR_MAX_STRING_CHARS = 300
GRAMMAR_MAX_ITEM_CHARS = 160
GRAMMAR_MAX_LIST_ITEMS = 3
GRAMMAR_MAX_IDS = 4
GRAMMAR_CONFIDENCE_STEPS = tuple(round(step / 10, 1) for step in range(11))
GRAMMAR_MAX_INSIGHTS = 6
GRAMMAR_MAX_BACKLOG_ITEMS = 3


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """How to reach the OpenAI-compatible server (from settings: FEEDBACKLOOP_LLM_*)."""

    base_url: str
    api_key: str | None
    model: str
    structured_output: StructuredOutputMethod = "json_schema"
    timeout_seconds: float = 60.0
    max_tokens: int = 1500
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.structured_output not in STRUCTURED_OUTPUT_METHODS:
            raise ValueError(
                f"structured_output {self.structured_output!r} is not one of {', '.join(STRUCTURED_OUTPUT_METHODS)}"
            )


@dataclass(frozen=True, slots=True)
class LLMOutcome:
    """What one call produced. Exactly one of `synthesis` and `error` is set; `raw_content` is the model's text
    (or tool arguments) when there was one, for the report and for a repair round after a parse failure."""

    synthesis: Synthesis | None
    error: str | None
    usage: dict[str, int]
    model: str
    raw_content: str | None = field(default=None)


def build_chat_model(config: LLMConfig) -> ChatOpenAI:
    """ChatOpenAI on the Chat Completions API; no client-side retries (the graph's RetryPolicy owns them)."""
    # ChatOpenAI sends `max_completion_tokens`, which llama-cpp-python's server ignores (it would generate up to
    # the context size); that server reads `max_tokens`, so json_object_schema also sends it in the body.
    extra_body = (
        {"max_tokens": config.max_tokens} if config.structured_output == "json_object_schema" else None
    )
    return ChatOpenAI(
        model=config.model,
        base_url=config.base_url,
        # Local servers need no key, but the client refuses to start without one.
        api_key=SecretStr(config.api_key or "not-needed"),
        timeout=config.timeout_seconds,
        max_retries=0,
        max_completion_tokens=config.max_tokens,
        temperature=config.temperature,
        use_responses_api=False,
        extra_body=extra_body,
    )


def is_transient_llm_error(exc: BaseException) -> bool:
    """True for failures worth retrying: timeouts, connection errors, 408/429 and 5xx answers."""
    if isinstance(
        exc,
        openai.APITimeoutError
        | openai.APIConnectionError
        | openai.RateLimitError
        | openai.InternalServerError
        | ModelTimeoutError
        | ModelConnectionError
        | ModelRateLimitError
        | ModelAPIError
        | TimeoutError
        | ConnectionError,
    ):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _TRANSIENT_STATUS_CODES
    return False


def synthesise_with_llm(
    signals: Sequence[Signal],
    mappings: Sequence[TheoryMapping],
    llm: LLMConfig,
    *,
    repair_feedback: str | None = None,
    previous: Synthesis | None = None,
    client: BaseChatModel | None = None,
) -> LLMOutcome:
    """One LLM call (a first synthesis, or a repair round when `repair_feedback` is given).

    Raises only transient errors (see is_transient_llm_error); any other failure is `LLMOutcome.error`.
    """
    model = client if client is not None else build_chat_model(llm)
    messages = build_messages(signals, mappings, repair_feedback=repair_feedback, previous=previous)
    grammar = None
    if llm.structured_output == "json_object_schema":
        grammar = grammar_schema([signal.id for signal in select_prompt_signals(signals)])
    answer = call_structured(model, messages, Synthesis, llm.structured_output, grammar=grammar)
    return LLMOutcome(answer.parsed, answer.error, answer.usage, llm.model, answer.raw_content)


# ---- the call, per structured-output method (shared with the escalation agent) ----


@dataclass(frozen=True, slots=True)
class StructuredAnswer(Generic[Answer]):
    """One structured call's result: exactly one of `parsed` and `error` is set; `raw_content` is the model's text
    (or tool arguments) when there was one."""

    parsed: Answer | None
    error: str | None
    usage: dict[str, int]
    raw_content: str | None = None


def call_structured(
    model: BaseChatModel,
    messages: list[BaseMessage],
    output: type[Answer],
    method: StructuredOutputMethod,
    *,
    grammar: dict[str, Any] | None = None,
) -> StructuredAnswer[Answer]:
    """One call asking for `output`. Raises only transient errors; every other failure is `error`.

    `grammar` is the schema sent to a grammar-constrained server (json_object_schema); default: `output`'s
    schema narrowed the way such servers need (see narrow_for_grammar)."""
    if method == "json_object_schema":
        schema = grammar if grammar is not None else narrow_for_grammar(output.model_json_schema())
        return _call_json_object_schema(model, messages, output, schema)
    return _call_with_structured_output(model, messages, output, method)


def _call_json_object_schema(
    model: BaseChatModel, messages: list[BaseMessage], output: type[Answer], schema: dict[str, Any]
) -> StructuredAnswer[Answer]:
    """llama-cpp-python's server: `json_object` + `schema` (it rejects json_schema); we parse the text."""
    try:
        message = model.bind(response_format={"type": "json_object", "schema": schema}).invoke(messages)
    except Exception as exc:
        return _failed_call(exc)
    usage = _usage(message)
    content = message.text
    if not content.strip():
        return StructuredAnswer(None, "the model returned no content", usage, content)
    try:
        parsed = output.model_validate_json(content)
    except ValidationError as exc:
        return StructuredAnswer(None, describe_validation_error(exc), usage, content)
    return StructuredAnswer(parsed, None, usage, content)


def _call_with_structured_output(
    model: BaseChatModel, messages: list[BaseMessage], output: type[Answer], method: str
) -> StructuredAnswer[Answer]:
    """with_structured_output(include_raw=True). Each method fails differently (REFERENCE.md §5): json_schema
    raises ValidationError from inside the call, function_calling returns parsed=None when the model answers in
    prose, a parser failure lands in parsing_error. All three end up as `error`."""
    runnable = model.with_structured_output(output, method=method, include_raw=True)
    try:
        result = runnable.invoke(messages)
    except Exception as exc:
        return _failed_call(exc)
    raw = result.get("raw") if isinstance(result, dict) else None
    usage = _usage(raw)
    raw_content = _raw_content(raw)
    parsing_error = result.get("parsing_error") if isinstance(result, dict) else None
    if parsing_error is not None:
        return StructuredAnswer(None, _describe_error(parsing_error), usage, raw_content)
    parsed = result.get("parsed") if isinstance(result, dict) else None
    if parsed is None:
        invalid = getattr(raw, "invalid_tool_calls", None)
        error = (
            "malformed JSON in the tool call's arguments: "
            + " ".join(str(invalid[0].get("error")).split())[:300]
            if invalid
            else "the model answered without structured output (nothing parsed)"
        )
        return StructuredAnswer(None, error, usage, raw_content)
    try:  # never trust the parsed object's type: re-validate whatever came back
        answer = output.model_validate(parsed if isinstance(parsed, dict) else parsed.model_dump())
    except (ValidationError, AttributeError) as exc:
        return StructuredAnswer(None, _describe_error(exc), usage, raw_content)
    return StructuredAnswer(answer, None, usage, raw_content)


def grammar_schema(signal_ids: Sequence[str]) -> dict[str, Any]:
    """Synthesis's JSON schema narrowed for a grammar-constrained server (llama.cpp compiles it into a grammar).

    Everything it allows is a valid Synthesis, and the answer is still validated against Synthesis. Narrowed
    because a small model under a grammar otherwise never stops: every property is required (no `{}`), string
    lengths are capped at GRAMMAR_MAX_STRING_CHARS (llama.cpp expands `maxLength: 1200` into 1,200 nested rules
    and refuses the grammar), lists are short, evidence ids must be ids the prompt shows and insight ids I1…In.
    """
    schema: dict[str, Any] = narrow_for_grammar(Synthesis.model_json_schema())
    insight_ids = [f"I{number}" for number in range(1, GRAMMAR_MAX_INSIGHTS + 1)]
    insight = schema["$defs"]["InsightDraft"]["properties"]
    insight["id"] = {"type": "string", "enum": insight_ids}
    # llama.cpp's grammar cannot bound a float, so confidence is one of 0.0, 0.1, … 1.0.
    insight["confidence"] = {"type": "number", "enum": list(GRAMMAR_CONFIDENCE_STEPS)}
    insight["evidence_ids"]["maxItems"] = GRAMMAR_MAX_IDS
    if signal_ids:
        insight["evidence_ids"]["items"] = {"type": "string", "enum": list(signal_ids)}
    backlog = schema["$defs"]["BacklogDraft"]["properties"]
    backlog["insight_ids"] |= {"items": {"type": "string", "enum": insight_ids}, "maxItems": GRAMMAR_MAX_IDS}
    schema["properties"]["insights"]["maxItems"] = GRAMMAR_MAX_INSIGHTS
    schema["properties"]["backlog_items"]["maxItems"] = GRAMMAR_MAX_BACKLOG_ITEMS
    return schema


def narrow_for_grammar(node: Any) -> Any:
    """A JSON schema a grammar-constrained server can compile and a small model can finish: every property
    required, strings and lists capped (what it allows is still valid under the original schema)."""
    if isinstance(node, list):
        return [narrow_for_grammar(item) for item in node]
    if not isinstance(node, dict):
        return node
    narrowed = {key: narrow_for_grammar(value) for key, value in node.items()}
    if isinstance(narrowed.get("properties"), dict):
        narrowed["required"] = list(narrowed["properties"])
    if narrowed.get("type") == "string" and "enum" not in narrowed:
        narrowed["maxLength"] = min(
            narrowed.get("maxLength", GRAMMAR_MAX_STRING_CHARS), GRAMMAR_MAX_STRING_CHARS
        )
    if narrowed.get("type") == "array":
        narrowed["maxItems"] = min(narrowed.get("maxItems", GRAMMAR_MAX_LIST_ITEMS), GRAMMAR_MAX_LIST_ITEMS)
        items = narrowed.get("items")
        if isinstance(items, dict) and items.get("type") == "string" and "enum" not in items:
            items["maxLength"] = GRAMMAR_MAX_ITEM_CHARS
    return narrowed


def _failed_call(exc: Exception) -> StructuredAnswer[Any]:
    if is_transient_llm_error(exc):
        raise exc
    # The SDK's parse() raises on finish_reason "length"/"content_filter" but keeps the completion: its tokens
    # were spent, so count them, and keep the text for the report.
    completion = getattr(exc, "completion", None)
    usage = getattr(completion, "usage", None)
    tokens = {
        "input_tokens": getattr(usage, "prompt_tokens", 0),
        "output_tokens": getattr(usage, "completion_tokens", 0),
    }
    choices = getattr(completion, "choices", None) or []
    content = getattr(choices[0].message, "content", None) if choices else None
    error = _describe_error(exc)
    if isinstance(exc, openai.LengthFinishReasonError):
        error = "the answer was cut off at max_tokens before the JSON was complete"
    return StructuredAnswer(None, error, _usage(tokens), content)


def _usage(source: object) -> dict[str, int]:
    """Token usage from an AIMessage's usage_metadata (or a dict of the same keys); 0 when absent."""
    metadata: Mapping[str, Any] = (
        source if isinstance(source, Mapping) else getattr(source, "usage_metadata", None) or {}
    )
    return {
        "llm_calls": 1,
        "input_tokens": int(metadata.get("input_tokens") or 0),
        "output_tokens": int(metadata.get("output_tokens") or 0),
    }


def _raw_content(message: object) -> str | None:
    if not isinstance(message, BaseMessage):
        return None
    tool_calls = getattr(message, "tool_calls", None) or getattr(message, "invalid_tool_calls", None) or []
    if tool_calls:
        arguments = tool_calls[0].get("args")
        return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return message.text or None


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """A one-line account for the report: `malformed JSON: …` or `3 schema violations: insights[0].impact: …`."""
    errors = exc.errors(include_url=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return f"malformed JSON: {errors[0]['msg']}"
    parts = []
    for error in errors[:limit]:
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(
            "."
        )
        parts.append(f"{path or '(root)'}: {error['msg']}")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    noun = "violation" if len(errors) == 1 else "violations"
    return f"{len(errors)} schema {noun}: " + "; ".join(parts) + more


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return describe_validation_error(exc)
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM server refused the request (HTTP {exc.status_code}): {exc.message}"[:500]
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ValidationError):
        return describe_validation_error(cause)
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


# ---- the prompt ----


def build_messages(
    signals: Sequence[Signal],
    mappings: Sequence[TheoryMapping],
    *,
    repair_feedback: str | None = None,
    previous: Synthesis | None = None,
) -> list[BaseMessage]:
    messages: list[BaseMessage] = [
        SystemMessage(render_system_prompt()),
        HumanMessage(render_user_prompt(signals, mappings)),
    ]
    if repair_feedback is not None:
        messages.append(HumanMessage(render_repair_prompt(previous, repair_feedback)))
    return messages


def render_system_prompt() -> str:
    return render(
        "retro_synthesis_system.txt.j2",
        fence_open=FENCE_OPEN,
        fence_close=FENCE_CLOSE,
        journey_stages=get_args(JourneyStage),
        canvas_blocks=get_args(CanvasBlock),
        impacts=get_args(Impact),
    )


def render_user_prompt(signals: Sequence[Signal], mappings: Sequence[TheoryMapping]) -> str:
    shown = select_prompt_signals(signals)
    by_signal = {mapping.signal_id: mapping for mapping in mappings}
    texts = [
        (signal.id, json.dumps(neutralise_untrusted(text), ensure_ascii=False))
        for signal in shown
        for text in [*_words_from_text(signal), *signal.text[:MAX_TEXTS_PER_SIGNAL]]
    ]
    return render(
        "retro_synthesis_user.txt.j2",
        rows=[json.dumps(signal_row(s, by_signal.get(s.id)), ensure_ascii=False) for s in shown],
        total=len(signals),
        shown=len(shown),
        max_signals=MAX_PROMPT_SIGNALS,
        max_text_signals=MAX_EXTRA_TEXT_SIGNALS,
        texts=texts,
        fence_open=FENCE_OPEN,
        fence_close=FENCE_CLOSE,
    )


def render_repair_prompt(previous: Synthesis | None, repair_feedback: str) -> str:
    previous_json = previous.model_dump_json() if previous is not None else None
    return render(
        "retro_repair.txt.j2",
        previous_json=neutralise_untrusted(previous_json, limit=None) if previous_json else None,
        feedback=neutralise_untrusted(repair_feedback, limit=None),
    )


def select_prompt_signals(signals: Sequence[Signal]) -> list[Signal]:
    """The signals the prompt shows, deterministically: the MAX_PROMPT_SIGNALS with the largest |change| (ties,
    and signals without a change, in detection order), plus up to MAX_EXTRA_TEXT_SIGNALS more that carry survey
    text; listed in detection order."""

    def rank(index: int) -> tuple[bool, float, int]:
        change = signals[index].change
        known = change is not None and math.isfinite(change)
        return (not known, -abs(change) if known and change is not None else 0.0, index)

    chosen = set(sorted(range(len(signals)), key=rank)[:MAX_PROMPT_SIGNALS])
    with_text = [i for i, signal in enumerate(signals) if signal.text and i not in chosen]
    chosen.update(with_text[:MAX_EXTRA_TEXT_SIGNALS])
    return [signals[i] for i in sorted(chosen)]


def signal_row(signal: Signal, mapping: TheoryMapping | None) -> dict[str, Any]:
    """One signal as the prompt shows it, numbers formatted by tools.retro.numbers (the grounding validator reads
    back exactly what those formatters write, so a number copied verbatim is a grounded number)."""
    row: dict[str, Any] = {"id": signal.id, "kind": signal.kind}
    optional: dict[str, Any] = {
        "metric": signal.metric,
        "persona": signal.persona,
        "value": format_number(signal.value),
        "baseline": format_number(signal.baseline),
        "unit": signal.unit,
        "change": format_change(signal.change, relative=change_is_relative(signal)),
        "p": format_p_value(signal.p_value),
        "n": format_number(signal.n),
        "baseline_n": format_number(signal.baseline_n),
        "users": format_number(signal.affected_users),
        "direction": signal.direction,
        "significant": signal.significant if signal.p_value is not None else None,
        "attributed_to": signal.attributed_to,
        "subject": None if signal.text else signal.subject,
        "detail": signal.detail,
        "facts": {
            name: _format_fact(value)
            for name, value in signal.facts.items()
            if not (signal.text and isinstance(value, str))
        }
        or None,
    }
    if mapping is not None:
        optional |= {
            "stage": mapping.journey_stage,
            "block": mapping.canvas_block,
            "principles": list(mapping.principles),
            "interventions": list(mapping.interventions),
        }
    row |= {key: _clean(value) for key, value in optional.items() if value not in (None, "")}
    return row


def _words_from_text(signal: Signal) -> list[str]:
    """Words taken from survey text (a theme's term, its subject) are untrusted too: for a signal that carries
    text they are shown inside the fence, never in its row."""
    if not signal.text:
        return []
    words = [f"{name}: {value}" for name, value in signal.facts.items() if isinstance(value, str)]
    return words + ([f"subject: {signal.subject}"] if signal.subject else [])


def _clean(value: Any) -> Any:
    """Strings from configuration or tools are data too: no fence markers, bounded length."""
    if isinstance(value, str):
        return neutralise_untrusted(value, limit=MAX_DETAIL_CHARS)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def neutralise_untrusted(text: str, *, limit: int | None = MAX_TEXT_CHARS) -> str:
    """Make text safe to place inside the fenced data block: no fence marker can be formed from it (lookalike
    characters folded by NFKC, runs of angle brackets collapsed, the fence name removed), one line, bounded."""
    text = unicodedata.normalize("NFKC", text)
    text = _FENCE_NAME_PATTERN.sub("[marker removed]", text)
    text = re.sub(r"<{2,}", "<", re.sub(r">{2,}", ">", text))
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _format_fact(value: float | int | str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return format_number(value)
