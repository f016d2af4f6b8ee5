"""synthesise_with_llm over a scripted chat model: each structured-output method's success and failure modes."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from pydantic import ValidationError

from agents.retro.llm import (
    GRAMMAR_MAX_STRING_CHARS,
    LLMConfig,
    LLMOutcome,
    build_chat_model,
    grammar_schema,
    is_transient_llm_error,
    synthesise_with_llm,
)
from tests.agents.fake_chat import ScriptedChatModel, answer, tool_answer
from tests.agents.retro_data import grounded_synthesis_payload, retro_mappings, retro_signals
from tools.retro.model import Synthesis

GOOD = grounded_synthesis_payload()
VIOLATING = {"insights": [{**GOOD["insights"][0], "impact": "Huge", "confidence": 3}], "backlog_items": []}
MALFORMED = '{"insights": [{"id": "I1", "title": "Sponsor renewals'
TEXT_METHODS = ["json_schema", "json_object_schema"]


def config(method: str) -> LLMConfig:
    return LLMConfig(
        base_url="http://127.0.0.1:9/v1",
        api_key=None,
        model="scripted",
        structured_output=method,  # type: ignore[arg-type]
    )


def call(method: str, *replies: object) -> tuple[LLMOutcome, ScriptedChatModel]:
    model = ScriptedChatModel(replies=list(replies))
    outcome = synthesise_with_llm(retro_signals(), retro_mappings(), config(method), client=model)
    return outcome, model


def scripted_reply(method: str, payload: object) -> object:
    if method == "function_calling":
        return tool_answer(payload)
    return answer(payload if isinstance(payload, str) else json.dumps(payload))


@pytest.mark.parametrize("method", ["json_schema", "json_object_schema", "function_calling"])
def test_valid_answer_becomes_a_synthesis_with_its_usage(method: str) -> None:
    outcome, _ = call(method, scripted_reply(method, GOOD))
    assert outcome.error is None
    assert outcome.synthesis == Synthesis.model_validate(GOOD)
    assert outcome.usage == {"llm_calls": 1, "input_tokens": 90, "output_tokens": 30}
    assert outcome.model == "scripted"


@pytest.mark.parametrize("method", ["json_schema", "json_object_schema", "function_calling"])
def test_malformed_json_is_an_error_not_an_exception(method: str) -> None:
    outcome, _ = call(method, scripted_reply(method, MALFORMED))
    assert outcome.synthesis is None
    assert outcome.error is not None and "malformed JSON" in outcome.error


@pytest.mark.parametrize("method", ["json_schema", "json_object_schema", "function_calling"])
def test_schema_violation_is_an_error_naming_the_fields(method: str) -> None:
    outcome, _ = call(method, scripted_reply(method, VIOLATING))
    assert outcome.synthesis is None
    assert outcome.error is not None
    assert "schema violations" in outcome.error
    assert "insights[0].impact" in outcome.error and "insights[0].confidence" in outcome.error


def test_function_calling_prose_answer_parses_to_none_which_is_an_error() -> None:
    outcome, _ = call("function_calling", answer("Renewals fell, you should fix that."))
    assert outcome.synthesis is None
    assert outcome.error == "the model answered without structured output (nothing parsed)"
    assert outcome.raw_content == "Renewals fell, you should fix that."
    assert outcome.usage["input_tokens"] == 90  # the tokens were spent all the same


@pytest.mark.parametrize("method", TEXT_METHODS)
def test_prose_answer_to_a_json_method_is_malformed_json(method: str) -> None:
    outcome, _ = call(method, answer("Renewals fell."))
    assert outcome.synthesis is None and outcome.error is not None and "malformed JSON" in outcome.error


def test_empty_content_is_an_error() -> None:
    outcome, _ = call("json_object_schema", answer(""))
    assert outcome.synthesis is None and outcome.error == "the model returned no content"


def test_missing_usage_counts_zero_tokens() -> None:
    outcome, _ = call("json_object_schema", answer(json.dumps(GOOD), input_tokens=None))
    assert outcome.synthesis is not None
    assert outcome.usage == {"llm_calls": 1, "input_tokens": 0, "output_tokens": 0}


def test_json_object_schema_sends_the_grammar_schema_as_response_format() -> None:
    _, model = call("json_object_schema", answer(json.dumps(GOOD)))
    response_format = model.calls[0]["response_format"]
    assert response_format["type"] == "json_object"
    assert response_format["schema"] == grammar_schema(["S1", "S2", "S3", "S4"])


def test_grammar_schema_only_allows_valid_syntheses() -> None:
    schema = grammar_schema(["S1", "S2"])
    text = json.dumps(schema)
    assert '"maxLength": 1200' not in text
    insight = schema["$defs"]["InsightDraft"]
    assert set(insight["required"]) == set(insight["properties"])
    assert insight["properties"]["evidence_ids"]["items"]["enum"] == ["S1", "S2"]
    assert all(0 <= step <= 1 for step in insight["properties"]["confidence"]["enum"])
    assert insight["properties"]["summary"]["maxLength"] == GRAMMAR_MAX_STRING_CHARS
    assert schema["additionalProperties"] is False and set(schema["required"]) == {
        "insights",
        "backlog_items",
    }


def test_a_client_error_is_returned_and_a_transient_one_raised() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    bad_request = openai.BadRequestError(
        "unsupported response_format", response=httpx2.Response(400, request=request), body=None
    )
    outcome, _ = call("json_object_schema", bad_request)
    assert outcome.synthesis is None and outcome.error is not None and "HTTP 400" in outcome.error

    with pytest.raises(openai.APITimeoutError):
        call("json_object_schema", openai.APITimeoutError(request=request))


def test_any_other_exception_from_the_model_is_returned_as_an_error() -> None:
    outcome, _ = call("function_calling", ValueError("server sent something odd"))
    assert outcome.error == "ValueError: server sent something odd"


def test_is_transient_llm_error_classifies_by_type_and_status() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")

    def status(code: int) -> openai.APIStatusError:
        return openai.APIStatusError("x", response=httpx2.Response(code, request=request), body=None)

    assert is_transient_llm_error(openai.APITimeoutError(request=request))
    assert is_transient_llm_error(openai.APIConnectionError(request=request))
    assert is_transient_llm_error(status(429)) and is_transient_llm_error(status(503))
    assert is_transient_llm_error(status(408))
    assert not is_transient_llm_error(status(400)) and not is_transient_llm_error(status(401))
    with pytest.raises(ValidationError) as caught:
        Synthesis.model_validate_json("{")
    assert not is_transient_llm_error(caught.value)
    assert not is_transient_llm_error(ValueError("parsed None"))


def test_build_chat_model_leaves_retries_to_the_graph() -> None:
    model = build_chat_model(
        LLMConfig(
            base_url="http://127.0.0.1:9/v1", api_key=None, model="m", structured_output="json_object_schema"
        )
    )
    assert model.max_retries == 0 and model.use_responses_api is False
    assert model.request_timeout == 60 and model.temperature == 0 and model.max_tokens == 1500
    # llama-cpp-python's server ignores max_completion_tokens, so max_tokens goes in the body as well
    assert model.extra_body == {"max_tokens": 1500}
    openai_model = build_chat_model(LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="k", model="m"))
    assert openai_model.extra_body is None


def test_unknown_structured_output_method_is_refused() -> None:
    with pytest.raises(ValueError, match="json_mode"):
        LLMConfig(base_url="http://x/v1", api_key=None, model="m", structured_output="json_mode")  # type: ignore[arg-type]
