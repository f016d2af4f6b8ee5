"""Real traffic to the local LLM server (llama-cpp-python + Gemma 3 270M), recorded into tests/cassettes/ and
replayed by default. Re-record with `make record-cassettes`.

The 270M model is weak: an answer may parse or not, so the tests hold the call layer to its contract (a
Synthesis or an error string, never an exception, tokens counted), not the model to good insights.
"""

from __future__ import annotations

import os

import pytest

from agents.retro.llm import LLMConfig, LLMOutcome, synthesise_with_llm
from tests.agents.retro_data import retro_mappings, retro_signals
from tools.retro.model import Synthesis

LOCAL_LLM_URL = "http://127.0.0.1:18080/v1"  # ../shared/tools/local-llm; cassettes match on this uri
# Read at import: tests/conftest.py clears FEEDBACKLOOP_* variables for the session.
LIVE_LLM = {key: os.environ.get(f"FEEDBACKLOOP_LLM_{key}") for key in ("BASE_URL", "MODEL", "API_KEY")}
LIVE_STRUCTURED_OUTPUT = os.environ.get("FEEDBACKLOOP_LLM_STRUCTURED_OUTPUT", "json_object_schema")

REPAIR_FEEDBACK = "\n".join(
    [
        "- insights[0].summary: 73% matches no number of the cited signals (S1)",
        "- backlog_items[0]: cites insight I2, which does not exist",
    ]
)


def local_llm() -> LLMConfig:
    # Recording runs at ~7 tokens/s on two cores, so the timeout is generous; replay takes milliseconds.
    return LLMConfig(
        base_url=LOCAL_LLM_URL,
        api_key="local",
        model="gemma-3-270m",
        structured_output="json_object_schema",
        timeout_seconds=900,
    )


def ungrounded_previous() -> Synthesis:
    return Synthesis.model_validate(
        {
            "insights": [
                {
                    "id": "I1",
                    "title": "Sponsor renewals collapsed",
                    "summary": "Renewals fell by 73% for brand sponsors.",
                    "journey_stage": "renewal",
                    "canvas_block": "revenue_streams",
                    "impact": "High",
                    "confidence": 0.9,
                    "evidence_ids": ["S1"],
                }
            ],
            "backlog_items": [
                {
                    "title": "Win back sponsors",
                    "problem": "Sponsors do not renew.",
                    "proposal": "Offer a renewal discount.",
                    "acceptance_criteria": ["Renewal rate recovers"],
                    "insight_ids": ["I2"],
                }
            ],
        }
    )


def assert_call_contract(outcome: LLMOutcome) -> None:
    # A request that no longer matches its cassette (a prompt changed: re-record) shows up in outcome.error.
    assert (outcome.synthesis is None) != (outcome.error is None), outcome.error
    if outcome.error is not None:
        assert isinstance(outcome.error, str) and outcome.error
    assert outcome.usage["llm_calls"] == 1
    assert outcome.usage["input_tokens"] > 0 and outcome.usage["output_tokens"] > 0, outcome.error


@pytest.mark.vcr
@pytest.mark.timeout(1800)
def test_recorded_retro_synthesis_call() -> None:
    outcome = synthesise_with_llm(retro_signals(), retro_mappings(), local_llm())
    assert_call_contract(outcome)
    assert outcome.model == "gemma-3-270m"


@pytest.mark.vcr
@pytest.mark.timeout(1800)
def test_recorded_retro_repair_call() -> None:
    outcome = synthesise_with_llm(
        retro_signals(),
        retro_mappings(),
        local_llm(),
        repair_feedback=REPAIR_FEEDBACK,
        previous=ungrounded_previous(),
    )
    assert_call_contract(outcome)


@pytest.mark.live_llm
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not LIVE_LLM["BASE_URL"], reason="live LLM test: set FEEDBACKLOOP_LLM_BASE_URL to run it")
def test_live_retro_synthesis_call() -> None:
    llm = LLMConfig(
        base_url=LIVE_LLM["BASE_URL"] or "",
        api_key=LIVE_LLM["API_KEY"],
        model=LIVE_LLM["MODEL"] or "gemma-3-270m",
        structured_output=LIVE_STRUCTURED_OUTPUT,  # type: ignore[arg-type]
        timeout_seconds=900,
    )
    assert_call_contract(synthesise_with_llm(retro_signals(), retro_mappings(), llm))
