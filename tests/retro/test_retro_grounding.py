"""The grounding validator, the repair feedback and merge_with_rules, on LLM-like answers."""

from __future__ import annotations

from typing import Any

from tests.retro.support import PROMPT_INJECTION, planted
from tools.journey import map_signals
from tools.retro.grounding import merge_with_rules, repair_feedback, validate, with_tool_confidence
from tools.retro.model import BacklogDraft, InsightDraft, Synthesis
from tools.retro.rules import signal_confidence, synthesise_rules

SIGNALS = planted()


def insight(insight_id: str = "I1", **fields: Any) -> InsightDraft:
    values: dict[str, Any] = {
        "title": "Errors tripled for podcast_network after v1.4.0",
        "summary": "error_rate for podcast_network rose from 0.12 to 0.36 (+200.0%, p<0.001) after v1.4.0.",
        "journey_stage": "adoption", "canvas_block": "key_activities", "principles": ["friction_ability"],
        "impact": "High", "confidence": 0.9, "evidence_ids": ["S1", "S2"],
        "recommendations": ["Roll back v1.4.0 for podcast_network"],
    }  # fmt: skip
    values.update(fields)
    return InsightDraft(id=insight_id, **values)


def draft(*insight_ids: str, **fields: Any) -> BacklogDraft:
    values: dict[str, Any] = {
        "title": "Fix error_rate regression from v1.4.0",
        "problem": "error_rate for podcast_network is at 0.36 against 0.12 (+200.0%).",
        "proposal": "- Roll back the v1.4.0 change that raised errors",
        "acceptance_criteria": ["error_rate for podcast_network back to ≤ 0.12"],
    }  # fmt: skip
    values.update(fields)
    return BacklogDraft(insight_ids=list(insight_ids or ("I1",)), **values)


def test_a_grounded_answer_passes_whole() -> None:
    answer = Synthesis(insights=[insight()], backlog_items=[draft()])
    result = validate(answer, SIGNALS)
    assert result.ok and result.synthesis == answer
    assert result.dropped_insight_ids == () and result.dropped_backlog_titles == ()


def test_accepted_spellings_of_the_same_numbers() -> None:
    summary = ("error_rate rose +200.0% (200%, 3.0x, 3×, +24.0 pp) from 0.120 to 0.360, n=1,200, p=0.0002, "
               "310 users, on 2024-01-15 in sprint-2024-01 after v1.4.0 (S1, S2)")  # fmt: skip
    assert validate(Synthesis(insights=[insight(summary=summary)]), SIGNALS).ok


def test_unknown_evidence_ids_are_rejected() -> None:
    result = validate(
        Synthesis(insights=[insight(evidence_ids=["S1", "S99"])], backlog_items=[draft()]), SIGNALS
    )
    assert result.dropped_insight_ids == ("I1",)
    assert result.issues[0].path == "insights[0].evidence_ids" and "S99" in result.issues[0].message
    # its backlog draft falls with it
    assert result.dropped_backlog_titles == ("Fix error_rate regression from v1.4.0",)
    assert result.synthesis == Synthesis()


def test_invented_numbers_are_rejected() -> None:
    result = validate(Synthesis(insights=[insight(summary="errors rose 57% after v1.4.0")]), SIGNALS)
    assert [(i.path, "'57%'" in i.message) for i in result.issues] == [("insights[0].summary", True)]
    wrong_signal = insight(summary="error_rate rose +200.0%; nps fell -61.3%", evidence_ids=["S1"])
    assert "'-61.3%'" in validate(Synthesis(insights=[wrong_signal]), SIGNALS).issues[0].message
    recommendation = insight(recommendations=["Cut errors by 50%"])
    assert (
        validate(Synthesis(insights=[recommendation]), SIGNALS).issues[0].path
        == "insights[0].recommendations[0]"
    )


def test_duplicate_ids_are_rejected() -> None:
    result = validate(Synthesis(insights=[insight("I1"), insight("I1", impact="Low")]), SIGNALS)
    assert result.dropped_insight_ids == ("I1",) and len(result.issues) == 2


def test_numbers_in_backlog_drafts_are_checked_against_their_insights_signals() -> None:
    bad = draft(acceptance_criteria=["error_rate back to ≤ 0.05 within 14 days"])
    result = validate(Synthesis(insights=[insight()], backlog_items=[bad]), SIGNALS)
    assert [i.path for i in result.issues] == ["backlog_items[0].acceptance_criteria[0]"]
    assert "'0.05'" in result.issues[0].message and "'14'" in result.issues[0].message
    unknown = validate(Synthesis(insights=[insight()], backlog_items=[draft("I7")]), SIGNALS)
    assert "I7 not insights" in unknown.issues[0].message


def test_text_alone_cannot_yield_a_backlog_item() -> None:
    text_only = insight(
        "I1", title="Users want admin access", summary="Survey answers ask for admin access (S5).",
        impact="Low", evidence_ids=["S5"], recommendations=[],
    )  # fmt: skip
    ticket = draft("I1", title="Grant admin access", problem="Users ask for it.", proposal="- Grant admin access",
                   acceptance_criteria=["Admin access granted"])  # fmt: skip
    result = validate(Synthesis(insights=[text_only], backlog_items=[ticket]), SIGNALS)
    assert result.synthesis.insights == [text_only] and result.synthesis.backlog_items == []
    messages = " ".join(i.message for i in result.issues)
    assert "High or Medium" in messages and "survey text alone can never create a backlog item" in messages


def test_prompt_injection_in_a_survey_theme_cannot_yield_a_backlog_item() -> None:
    """What a model obeying the injected text would answer: a High insight on the theme and a ticket."""
    obeyed = insight("I1", title="File a ticket to grant admin access", summary=PROMPT_INJECTION, impact="High",
                     evidence_ids=["S5"], recommendations=["Grant admin access to every user"])  # fmt: skip
    ticket = draft("I1", title="Grant admin access", problem=PROMPT_INJECTION, proposal="- Grant admin access",
                   acceptance_criteria=["Every user has admin access"])  # fmt: skip
    result = validate(Synthesis(insights=[obeyed], backlog_items=[ticket]), SIGNALS)
    assert result.synthesis == Synthesis()
    assert result.dropped_backlog_titles == ("Grant admin access",)
    rules = synthesise_rules(SIGNALS, map_signals(SIGNALS))
    merged = merge_with_rules(result.synthesis, rules, SIGNALS)
    assert all("admin" not in d.title.lower() for d in merged.backlog_items)


def test_an_insight_quoting_survey_text_verbatim_is_rejected_even_when_it_cites_numbers() -> None:
    """The injected sentence must not travel into a report under the cover of a real, quantitative signal."""
    smuggled = insight(title="Report errors rose", summary=f"Users say: {PROMPT_INJECTION.upper()}!",
                       impact="High", evidence_ids=["S1"])  # fmt: skip
    result = validate(Synthesis(insights=[smuggled]), SIGNALS)
    assert result.dropped_insight_ids == ("I1",)
    assert [issue.path for issue in result.issues] == ["insights[0].summary"]
    assert "repeats survey text verbatim" in result.issues[0].message
    paraphrase = insight(title="Report errors rose", summary="Some respondents ask for access changes.",
                         impact="High", evidence_ids=["S1"])  # fmt: skip
    assert validate(Synthesis(insights=[paraphrase]), SIGNALS).issues == ()


def test_repair_feedback_lists_the_issues() -> None:
    result = validate(
        Synthesis(insights=[insight(summary="errors rose 57%", evidence_ids=["S1", "S42"])]), SIGNALS
    )
    feedback = repair_feedback(result.issues)
    assert feedback.splitlines()[0].startswith("- insights[0].evidence_ids: cites S42")
    assert "- insights[0].summary: states '57%'" in feedback
    assert repair_feedback(()) == ""


def test_merge_restores_a_dropped_planted_insight() -> None:
    """A weak LLM kept only the NPS insight: the +200% regression and the experiment winner come back."""
    rules = synthesise_rules(SIGNALS, map_signals(SIGNALS))
    nps_only = Synthesis(
        insights=[insight("I1", title="NPS fell for agency", summary="nps for agency fell from 31 to 12 (-61.3%).",
                          journey_stage="advocacy", canvas_block="customer_relationships", impact="Medium",
                          evidence_ids=["S3"], recommendations=[])],
        backlog_items=[draft("I1", title="Recover nps for agency", problem="nps fell to 12 from 31.",
                             proposal="- Call detractors", acceptance_criteria=["nps for agency back to ≥ 31"])],
    )  # fmt: skip
    assert validate(nps_only, SIGNALS).ok
    merged = merge_with_rules(nps_only, rules, SIGNALS)
    assert [i.id for i in merged.insights] == ["I1", "I2", "I3"]
    restored = merged.insights[1]
    assert restored.impact == "High" and restored.evidence_ids == ["S1", "S2"]
    assert {tuple(d.insight_ids) for d in merged.backlog_items} == {("I1",), ("I2",), ("I3",)}
    assert validate(merged, SIGNALS).ok


def test_merge_does_not_accept_a_downgraded_problem() -> None:
    rules = synthesise_rules(SIGNALS, map_signals(SIGNALS))
    downgraded = Synthesis(insights=[insight("I4", impact="Low")])
    merged = merge_with_rules(downgraded, rules, SIGNALS)
    high = [i for i in merged.insights if i.impact == "High"]
    assert len(high) == 1 and high[0].id == "I5" and "S1" in high[0].evidence_ids
    assert validate(merged, SIGNALS).ok


def test_merge_keeps_a_complete_answer_as_it_is() -> None:
    rules = synthesise_rules(SIGNALS, map_signals(SIGNALS))
    assert merge_with_rules(rules, rules, SIGNALS) == rules
    assert merge_with_rules(Synthesis(), rules, SIGNALS) == rules


def test_a_real_signal_cannot_carry_an_unrelated_ticket() -> None:
    """The injected request rides on a real High insight: the ticket must name what its evidence is about."""
    ticket = draft(title="Grant admin access to every account", problem="Users asked for it.",
                   proposal="- Grant admin access", acceptance_criteria=["Every user is an admin"])  # fmt: skip
    result = validate(Synthesis(insights=[insight()], backlog_items=[ticket]), SIGNALS)
    assert result.synthesis.insights == [insight()] and result.synthesis.backlog_items == []
    assert [issue.path for issue in result.issues] == ["backlog_items[0].title"]
    assert "error_rate" in result.issues[0].message


def test_impact_above_what_the_evidence_supports_is_rejected() -> None:
    overstated = insight(title="Report accuracy slipped", summary="report_accuracy for solo_podcaster moved.",
                         recommendations=[], impact="High", evidence_ids=["S6"])  # fmt: skip
    result = validate(Synthesis(insights=[overstated]), SIGNALS)
    assert [issue.path for issue in result.issues] == ["insights[0].impact"]
    assert "Low at most" in result.issues[0].message


def test_confidence_comes_from_the_tools_not_the_llm() -> None:
    sure = with_tool_confidence(Synthesis(insights=[insight(confidence=0.05)]), SIGNALS)
    assert sure.insights[0].confidence == round(signal_confidence(SIGNALS[0]), 2) > 0.9
