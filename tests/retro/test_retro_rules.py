"""The deterministic synthesiser on a planted scenario and a null one."""

from __future__ import annotations

from tests.retro.support import metric_change, null_scenario, planted, signal
from tools.journey import map_signals
from tools.retro.grounding import validate
from tools.retro.model import InsightDraft, Signal, Synthesis
from tools.retro.rules import signal_confidence, signal_impact, synthesise_rules


def _rules(signals: list[Signal]) -> Synthesis:
    return synthesise_rules(signals, map_signals(signals))


def _citing(synthesis: Synthesis, signal_id: str) -> InsightDraft:
    return next(i for i in synthesis.insights if signal_id in i.evidence_ids)


def test_planted_regression_is_a_high_insight_with_its_deployment() -> None:
    synthesis = _rules(planted())
    first = synthesis.insights[0]
    assert first.id == "I1" and first.impact == "High"
    assert first.evidence_ids == ["S1", "S2"]
    assert (first.journey_stage, first.canvas_block) == ("adoption", "key_activities")
    assert first.title == "error_rate worsened +200.0% for podcast_network after `v1.4.0`"
    assert "from 0.12 to 0.36" in first.summary and "p<0.001" in first.summary and "n=1,200" in first.summary
    assert first.recommendations[0].startswith("Review the changes shipped in `v1.4.0`")
    assert "friction_ability" in first.principles
    ticket = synthesis.backlog_items[0]
    assert ticket.insight_ids == ["I1"]
    assert "error_rate for podcast_network back to ≤ 0.12 (the baseline window)" in ticket.acceptance_criteria


def test_planted_nps_drop_experiment_winner_and_text() -> None:
    synthesis = _rules(planted())
    nps = _citing(synthesis, "S3")
    assert nps.impact == "Medium" and nps.journey_stage == "advocacy" and "-61.3%" in nps.title
    winner = _citing(synthesis, "S4")
    assert winner.impact == "Medium" and winner.title.startswith(
        "Ship the winner of experiment onboarding-checklist"
    )
    assert "97.0% chance to win" in winner.summary
    theme = _citing(synthesis, "S5")
    assert theme.impact == "Low" and "ignore previous" not in theme.summary  # untrusted text is never copied
    assert _citing(synthesis, "S6").impact == "Low"
    ticketed = {i for draft in synthesis.backlog_items for i in draft.insight_ids}
    assert ticketed == {"I1", nps.id, winner.id}
    assert [i.impact for i in synthesis.insights] == ["High", "Medium", "Medium", "Low", "Low"]


def test_rules_output_is_grounded_and_reproducible() -> None:
    for scenario in (planted(), null_scenario()):
        synthesis = _rules(scenario)
        assert validate(synthesis, scenario).issues == ()
        assert _rules(scenario) == synthesis


def test_null_scenario_has_no_high_insight_and_no_backlog() -> None:
    synthesis = _rules(null_scenario())
    assert synthesis.insights and all(i.impact == "Low" for i in synthesis.insights)
    assert synthesis.backlog_items == []


def test_impact_rules() -> None:
    regression = metric_change("S1", "error_rate", "agency", 0.15, 0.12, 0.01)  # +25%
    small = metric_change("S2", "error_rate", "agency", 0.13, 0.12, 0.01)  # +8.3%
    small_attributed = metric_change("S3", "error_rate", "agency", 0.13, 0.12, 0.01, attributed_to="v2")
    tiny = metric_change("S4", "error_rate", "agency", 0.121, 0.12, 0.001)
    assert [signal_impact(s) for s in (regression, small, small_attributed, tiny)] == [
        "High",
        "Medium",
        "High",
        "Low",
    ]
    big_survey = metric_change("S5", "nps", "agency", 5.0, 40.0, 0.0001, kind="survey_shift")
    assert signal_impact(big_survey) == "Medium"  # never High: relative changes of scores mislead
    critical = signal("S6", "escalation", metric="error_rate", value=0.3, facts={"severity": "critical"})
    resolved = signal(
        "S7", "escalation", metric="error_rate", value=0.3, facts={"severity": "high", "status": "resolved"}
    )
    assert (signal_impact(critical), signal_impact(resolved)) == ("High", "Medium")
    loser = signal(
        "S8",
        "experiment_result",
        metric="ltv",
        change=-0.3,
        value=1.0,
        direction="worsened",
        significant=True,
    )
    assert signal_impact(loser) == "Low"
    theme = signal("S9", "survey_theme", persona="agency", text=("everything is broken, urgent!",))
    assert signal_impact(theme) == "Low"


def test_text_alone_never_makes_a_high_insight_or_a_ticket() -> None:
    signals = [signal("S1", "survey_theme", persona="agency", subject="crashes", n=40, text=("it crashes daily",)),
               signal("S2", "deployment", subject="v3.0.0")]  # fmt: skip
    synthesis = _rules(signals)
    assert [i.impact for i in synthesis.insights] == ["Low", "Low"]
    assert synthesis.backlog_items == []


def test_confidence() -> None:
    assert signal_confidence(metric_change("S1", "ltv", "agency", 2.0, 1.0, 0.003)) == 0.99
    assert signal_confidence(metric_change("S2", "ltv", "agency", 2.0, 1.0, 0.2, n=50)) == 0.6  # 0.8 × 0.75
    assert signal_confidence(signal("S3", "survey_theme")) == 0.3


def test_grouping_same_persona_and_stage() -> None:
    signals = [
        metric_change("S1", "support_incidents", "agency", 0.5, 0.3, 0.001),
        metric_change("S2", "support_resolution_time", "agency", 30.0, 20.0, 0.01, kind="kpi_change"),
        metric_change("S3", "support_incidents", "brand_sponsor", 0.5, 0.3, 0.001),
        metric_change("S4", "ltv", "agency", 200.0, 100.0, 0.01, kind="kpi_change"),  # improved: apart
    ]
    synthesis = _rules(signals)
    assert [i.evidence_ids for i in synthesis.insights] == [["S1", "S2"], ["S3"], ["S4"]]


def test_signals_shaped_like_the_detectors() -> None:
    """The facts tools.retro.signals and signal_records write: NPS in points, escalation ids, theme terms."""
    signals = [
        metric_change("S1", "nps", "agency", 12.0, 31.0, 0.004, kind="survey_shift", unit="nps_points",
                      change=-19.0, facts={"p_value_unadjusted": 0.001, "tests_in_family": 14}),
        signal("S2", "escalation", metric="error_rate", persona="podcast_network", value=0.36, baseline=0.12,
               change=2.0, n=400, direction="worsened", significant=True, affected_users=400, subject="17",
               attributed_to="v1.4.0",
               facts={"severity": "critical", "status": "open", "opened_at": "2026-05-20T10:00:00+00:00",
                      "fired_at": "never"}),
        signal("S3", "experiment_result", metric="report_sent", value=0.42, baseline=0.35, change=0.2, n=450,
               direction="improved", significant=True, subject="report-template-2", affected_users=900,
               facts={"winning_variant": "compact", "variant": "compact", "experiment_type": "report_template",
                      "chance_to_win": 0.991, "lift": 0.2, "users_control": 450, "decision": "none"}),
        signal("S4", "survey_theme", persona="agency", direction="neutral", text=("exports time out",),
               facts={"theme": "exports", "mentions": 4, "comments": 12}),
        signal("S5", "deployment", metric="error_rate", persona="podcast_network", value=0.36, baseline=0.12,
               change=2.0, subject="v1.4.0", facts={"attributed_signals": "S2", "bake_hours": 48.0}),
    ]  # fmt: skip
    synthesis = _rules(signals)
    assert validate(synthesis, signals).issues == ()
    high = synthesis.insights[0]
    assert high.impact == "High" and high.evidence_ids == ["S2", "S5"]
    assert "Escalation `17`" in high.summary
    nps = _citing(synthesis, "S1")
    assert nps.impact == "Medium" and "-19 points" in nps.title  # a difference, not "-1,900.0%"
    winner = _citing(synthesis, "S3")
    assert "variant compact" in winner.summary and "99.1% chance to win" in winner.summary
    assert "exports (in 4 of 12 comments)" in _citing(synthesis, "S4").summary
    assert any(
        d.title == "Resolve escalation `17`: error_rate for podcast_network" for d in synthesis.backlog_items
    )
