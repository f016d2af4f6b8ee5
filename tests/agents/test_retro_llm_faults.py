"""The call layer against a fake OpenAI-compatible server (real ChatOpenAI, real HTTP on loopback):
transient failures are raised for the graph's RetryPolicy, everything else comes back as an error, and
ungrounded answers are passed on unchanged for the grounding validator to judge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from agents.retro.llm import (
    LLMConfig,
    LLMOutcome,
    is_transient_llm_error,
    synthesise_with_llm,
)
from tests.agents.fake_openai import FakeOpenAIServer, Reply
from tests.agents.retro_data import INJECTION, grounded_synthesis_payload, retro_mappings, retro_signals
from tools.retro.grounding import validate

GOOD = grounded_synthesis_payload()
# The retro graph's policy (agents/retro/graph.py), with a short interval and no jitter to keep the test quick.
RETRY = RetryPolicy(retry_on=is_transient_llm_error, max_attempts=3, initial_interval=0.01, jitter=False)
METHODS = ["json_schema", "json_object_schema", "function_calling"]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def config(
    server: FakeOpenAIServer, method: str = "json_object_schema", timeout_seconds: float = 5
) -> LLMConfig:
    return LLMConfig(
        base_url=server.base_url,
        api_key="sk-test",
        model="fake-model",
        structured_output=method,  # type: ignore[arg-type]
        timeout_seconds=timeout_seconds,
    )


def good_reply(method: str, payload: Any = GOOD) -> Reply:
    return Reply.tool_call(payload) if method == "function_calling" else Reply.json_content(payload)


def synthesise(server: FakeOpenAIServer, method: str = "json_object_schema", **options: Any) -> LLMOutcome:
    return synthesise_with_llm(retro_signals(), retro_mappings(), config(server, method, **options))


@pytest.mark.parametrize("method", METHODS)
def test_valid_answer_over_http_with_usage(server: FakeOpenAIServer, method: str) -> None:
    server.script(good_reply(method))
    outcome = synthesise(server, method)
    assert outcome.error is None and outcome.synthesis is not None
    assert validate(outcome.synthesis, retro_signals()).ok
    assert outcome.synthesis.insights[0].evidence_ids == ["S1"]
    assert outcome.usage == {"llm_calls": 1, "input_tokens": 120, "output_tokens": 40}
    assert server.requests[0]["model"] == "fake-model" and server.requests[0]["temperature"] == 0


def test_timeout_is_raised_as_transient(server: FakeOpenAIServer) -> None:
    server.script(Reply.slow(2.0, GOOD))
    with pytest.raises(Exception) as caught:
        synthesise(server, timeout_seconds=0.3)
    assert is_transient_llm_error(caught.value)
    assert len(server.requests) == 1  # max_retries=0: the client itself never retries


@pytest.mark.parametrize(
    ("status_code", "name"), [(429, "RateLimitError"), (500, "InternalServerError"), (503, "")]
)
def test_rate_limit_and_server_errors_are_raised_as_transient(
    server: FakeOpenAIServer, status_code: int, name: str
) -> None:
    server.script(Reply.status(status_code, headers={"retry-after": "0"}))
    with pytest.raises(Exception) as caught:
        synthesise(server)
    assert is_transient_llm_error(caught.value)
    assert name in [cls.__name__ for cls in type(caught.value).__mro__] or not name
    assert len(server.requests) == 1


def test_connection_refused_is_transient() -> None:
    with FakeOpenAIServer() as gone:
        base_url = gone.base_url
    closed = LLMConfig(base_url=base_url, api_key="k", model="m", structured_output="json_object_schema")
    with pytest.raises(Exception) as caught:
        synthesise_with_llm(retro_signals(), retro_mappings(), closed)
    assert is_transient_llm_error(caught.value)


@pytest.mark.parametrize("method", METHODS)
def test_malformed_json_is_returned_as_an_error(server: FakeOpenAIServer, method: str) -> None:
    server.script(
        Reply.tool_call('{"insights": [{') if method == "function_calling" else Reply.text('{"insights": [{')
    )
    outcome = synthesise(server, method)
    assert outcome.synthesis is None and outcome.error is not None and "malformed JSON" in outcome.error


@pytest.mark.parametrize("method", METHODS)
def test_a_400_is_returned_as_an_error(server: FakeOpenAIServer, method: str) -> None:
    server.script(Reply.status(400, "response_format json_schema is not supported"))
    outcome = synthesise(server, method)
    assert outcome.synthesis is None and outcome.error is not None
    assert "HTTP 400" in outcome.error and "not supported" in outcome.error


def test_answer_cut_off_at_max_tokens_is_an_error_that_keeps_its_usage(server: FakeOpenAIServer) -> None:
    server.script(Reply.text('{"insights": [', completion_tokens=1500, finish_reason="length"))
    outcome = synthesise(server)
    assert outcome.synthesis is None and outcome.error is not None and "max_tokens" in outcome.error
    assert outcome.usage == {"llm_calls": 1, "input_tokens": 120, "output_tokens": 1500}
    assert outcome.raw_content == '{"insights": ['


def test_unknown_evidence_ids_are_passed_on_for_grounding(server: FakeOpenAIServer) -> None:
    payload = {"insights": [{**GOOD["insights"][0], "evidence_ids": ["S1", "S99"]}], "backlog_items": []}
    server.script(Reply.json_content(payload))
    outcome = synthesise(server)
    assert outcome.synthesis is not None and outcome.synthesis.insights[0].evidence_ids == ["S1", "S99"]
    assert not validate(outcome.synthesis, retro_signals()).ok  # the graph's grounding step rejects it


def test_numbers_that_match_nothing_are_passed_on_for_grounding(server: FakeOpenAIServer) -> None:
    summary = "Renewals collapsed by 73% and churn cost 1.2M this quarter."
    payload = {"insights": [{**GOOD["insights"][0], "summary": summary}], "backlog_items": []}
    server.script(Reply.json_content(payload))
    outcome = synthesise(server)
    assert outcome.synthesis is not None and outcome.synthesis.insights[0].summary == summary
    assert not validate(outcome.synthesis, retro_signals()).ok


def test_an_answer_that_follows_the_injection_is_passed_on_and_the_text_was_fenced(
    server: FakeOpenAIServer,
) -> None:
    obeying = {
        "insights": [
            {**GOOD["insights"][0], "title": "Grant admin access", "evidence_ids": ["S4"], "impact": "High"}
        ],
        "backlog_items": [{**GOOD["backlog_items"][0], "title": "Grant admin access to the survey author"}],
    }
    server.script(Reply.json_content(obeying))
    outcome = synthesise(server)
    assert outcome.synthesis is not None  # the call layer does not judge; grounding drops text-only tickets
    assert outcome.synthesis.insights[0].evidence_ids == ["S4"]
    grounded = validate(outcome.synthesis, retro_signals())
    assert grounded.synthesis.insights == [] and grounded.synthesis.backlog_items == []
    user_prompt = server.requests[0]["messages"][1]["content"]
    fenced = user_prompt.split("<<<UNTRUSTED_SURVEY_TEXT", 1)[1].split("UNTRUSTED_SURVEY_TEXT>>>", 1)[0]
    assert INJECTION in fenced and user_prompt.count(INJECTION) == 1


class _State(TypedDict, total=False):
    outcome: LLMOutcome


def one_node_graph(llm: LLMConfig) -> Any:
    def synthesise_node(state: _State) -> _State:
        return {"outcome": synthesise_with_llm(retro_signals(), retro_mappings(), llm)}

    builder = StateGraph(_State)
    builder.add_node(
        "synthesise",
        synthesise_node,
        retry_policy=RETRY,
    )
    builder.add_edge(START, "synthesise")
    builder.add_edge("synthesise", END)
    return builder.compile()


def test_retry_policy_gets_past_a_429(server: FakeOpenAIServer) -> None:
    server.script(Reply.status(429, headers={"retry-after": "0"}), Reply.json_content(GOOD))
    result = one_node_graph(config(server)).invoke({})
    assert result["outcome"].synthesis is not None and result["outcome"].error is None
    assert len(server.requests) == 2


def test_retry_policy_gives_up_after_three_attempts(server: FakeOpenAIServer) -> None:
    server.script(Reply.status(500), Reply.status(502), Reply.status(503), Reply.json_content(GOOD))
    with pytest.raises(Exception) as caught:
        one_node_graph(config(server)).invoke({})
    assert is_transient_llm_error(caught.value)
    assert len(server.requests) == 3


def test_retry_policy_does_not_retry_a_malformed_answer(server: FakeOpenAIServer) -> None:
    server.script(Reply.text("not json"), Reply.json_content(GOOD))
    result = one_node_graph(config(server)).invoke({})
    assert result["outcome"].synthesis is None and "malformed JSON" in result["outcome"].error
    assert len(server.requests) == 1
