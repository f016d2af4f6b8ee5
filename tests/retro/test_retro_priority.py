"""RICE ordering, labels and the fingerprint that lets the same problem dedupe across retros."""

from __future__ import annotations

import pytest

from tests.retro.support import metric_change, planted, signal
from tools.journey import map_signals
from tools.retro.model import BacklogItem, Signal
from tools.retro.priority import UngroundedDraftError, fingerprint, prioritise, rice
from tools.retro.rules import synthesise_rules


def _items(signals: list[Signal], **options: float) -> list[BacklogItem]:
    synthesis = synthesise_rules(signals, map_signals(signals))
    return prioritise(synthesis.backlog_items, synthesis.insights, signals, retro_id="R1", **options)


def test_items_are_ordered_by_score_with_rice_fields() -> None:
    items = _items(planted())
    assert [item.id for item in items] == ["B1", "B2", "B3"]
    scores = [item.priority.score for item in items]
    assert scores == sorted(scores, reverse=True)
    errors = next(item for item in items if "error_rate" in item.title)
    assert errors.priority.reach == 310 and errors.priority.impact == 3.0  # |change| 2.0 ≥ 0.5
    assert errors.priority.confidence == 0.99 and errors.priority.effort == 2.0
    assert errors.priority.score == round(310 * 3.0 * 0.99 / 2.0, 1)
    assert errors.evidence_ids == ("S1", "S2") and errors.insight_ids == ("I1",)
    assert errors.labels == ("feedbackloop", "retro", "adoption", "podcast_network", "impact-high")
    assert len(errors.fingerprint) == 32 and int(errors.fingerprint, 16) >= 0


def test_effort_scales_the_score() -> None:
    assert _items(planted(), effort_weeks_default=4.0)[0].priority.effort == 4.0
    with pytest.raises(ValueError, match="more than 0"):
        _items(planted(), effort_weeks_default=0)


def test_impact_from_effect_size_and_high_insights() -> None:
    small = metric_change("S1", "error_rate", "agency", 0.13, 0.12, 0.001)  # +8.3%
    assert rice([small], [], 2.0).impact == 0.5
    assert rice([metric_change("S1", "error_rate", "agency", 0.135, 0.12, 0.001)], [], 2.0).impact == 1.0
    attributed = metric_change("S1", "error_rate", "agency", 0.13, 0.12, 0.001, attributed_to="v9")
    [item] = _items([attributed, signal("S2", "deployment", subject="v9")])
    assert item.priority.impact == 2.0  # a High insight counts at least 2
    unsure = rice(
        [metric_change("S1", "ltv", "agency", 100.0, 200.0, 0.6, n=50, affected_users=None)], [], 2.0
    )
    assert (unsure.confidence, unsure.reach) == (0.5, 50)  # 0.4 × 0.75 held to 0.5; reach falls back to n


def test_same_problem_different_numbers_same_fingerprint() -> None:
    this_sprint = _items(planted())
    other = planted()
    other[0] = metric_change("S9", "error_rate", "podcast_network", 0.5, 0.2, 0.01, attributed_to="v1.5.2",
                             affected_users=99)  # fmt: skip
    other[1] = signal("S8", "deployment", subject="v1.5.2")
    next_sprint = _items(other)

    def by_metric(items: list[BacklogItem], metric: str) -> str:
        return next(item.fingerprint for item in items if metric in item.title)

    assert by_metric(this_sprint, "error_rate") == by_metric(next_sprint, "error_rate")
    assert by_metric(this_sprint, "nps") == by_metric(next_sprint, "nps")
    assert len({item.fingerprint for item in this_sprint}) == 3


def test_fingerprint_names_the_problem() -> None:
    errors = metric_change("S1", "error_rate", "agency", 0.2, 0.1, 0.01)
    same = metric_change("S7", "error_rate", "agency", 0.9, 0.1, 0.0001)
    other_persona = metric_change("S1", "error_rate", "brand_sponsor", 0.2, 0.1, 0.01)
    deployment = signal("S2", "deployment", subject="v1")
    assert fingerprint([errors]) == fingerprint([same]) == fingerprint([errors, deployment])
    assert fingerprint([errors]) != fingerprint([other_persona])
    assert fingerprint([errors, other_persona]) == fingerprint([other_persona, errors])
    nps = metric_change("S3", "nps", "agency", 10.0, 20.0, 0.01, kind="kpi_change")
    alias = metric_change("S3", "nps_score", "agency", 10.0, 20.0, 0.01, kind="kpi_change")
    assert fingerprint([nps]) == fingerprint([alias])
    first = signal("S4", "experiment_result", metric="ltv", change=0.2, value=1.0, subject="a")
    second = signal("S4", "experiment_result", metric="ltv", change=0.2, value=1.0, subject="b")
    assert fingerprint([first]) != fingerprint([second])


def test_a_draft_without_quantitative_evidence_is_refused() -> None:
    synthesis = synthesise_rules(planted(), map_signals(planted()))
    theme_only = synthesis.insights[-1].model_copy(update={"evidence_ids": ["S5"]})
    draft = synthesis.backlog_items[0].model_copy(update={"insight_ids": [theme_only.id]})
    with pytest.raises(UngroundedDraftError, match="validate the synthesis"):
        prioritise([draft], [theme_only], planted(), retro_id="R1")
    with pytest.raises(ValueError, match="retro_id"):
        prioritise([], [], [], retro_id="")
