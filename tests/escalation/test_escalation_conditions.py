"""conditions.judge as a pure function: each comparison's trigger and recovery points (exact boundaries), the
minimum sample and a zero baseline as no_data, and significant_* needing both the effect floor and p < alpha, with
the p-value checked against scipy's Welch t-test on equivalent data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from tools.escalation.conditions import Judgement, judge
from tools.escalation.measure import Measurement
from tools.escalation.model import EscalationRule
from tools.stats.statistics import BinomialStatistic, MeanStatistic

BASE_VALUES = [1, 0, 2, 1, 1, 0, 1, 2, 1, 1] * 4  # n = 40, mean 1.0
SPIKE_VALUES = [3, 2, 4, 3, 2, 3, 4, 3, 2, 4] * 4  # n = 40, mean 3.0


def make_rule(comparison: str, threshold: float, **overrides: Any) -> EscalationRule:
    absolute = comparison in ("less_than", "greater_than")
    condition = {"metric": "error_rate", "baseline": "absolute" if absolute else "previous_period"}
    values: dict[str, Any] = {
        "rule_id": "r", "escalation_type": "custom", "severity": "high", "condition": condition,
        "threshold": threshold, "comparison": comparison, "min_sample": 3,
    }  # fmt: skip
    return EscalationRule(**(values | overrides))


def value(v: float, n: int = 10) -> Measurement:
    return Measurement(v, n)


def sample(values: list[float]) -> Measurement:
    statistic = MeanStatistic.from_values(np.asarray(values, dtype=float))
    return Measurement(float(np.mean(values)), len(values), statistic)


def verdict(judgement: Judgement) -> tuple[bool | None, bool | None]:
    return judgement.triggered, judgement.recovered


# ---- absolute comparisons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "expected"),
    [(-0.01, (True, False)), (0.0, (False, True)), (0.01, (False, True)), (-80.0, (True, False))],
)
def test_less_than_triggers_strictly_below_and_recovers_at_the_threshold(
    measured: float, expected: tuple[bool, bool]
) -> None:
    assert verdict(judge(make_rule("less_than", 0.0), value(measured), None)) == expected


@pytest.mark.parametrize(
    ("measured", "expected"),
    [(-0.5, (True, False)), (0.0, (False, False)), (9.99, (False, False)), (10.0, (False, True))],
)
def test_less_than_with_a_recovery_threshold_has_a_dead_band(
    measured: float, expected: tuple[bool, bool]
) -> None:
    rule = make_rule("less_than", 0.0, recovery_threshold=10.0)
    assert verdict(judge(rule, value(measured), None)) == expected


@pytest.mark.parametrize(
    ("measured", "expected"),
    [(2.0, (False, True)), (2.0001, (True, False)), (1.0, (False, True)), (5.0, (True, False))],
)
def test_greater_than_triggers_strictly_above_and_recovers_at_the_threshold(
    measured: float, expected: tuple[bool, bool]
) -> None:
    assert verdict(judge(make_rule("greater_than", 2.0), value(measured), None)) == expected


@pytest.mark.parametrize(
    ("measured", "expected"), [(2.5, (True, False)), (1.8, (False, False)), (1.5, (False, True))]
)
def test_greater_than_with_a_recovery_threshold(measured: float, expected: tuple[bool, bool]) -> None:
    rule = make_rule("greater_than", 2.0, recovery_threshold=1.5)
    assert verdict(judge(rule, value(measured), None)) == expected


def test_absolute_judgement_carries_value_n_and_a_baseline_when_one_is_given() -> None:
    judgement = judge(make_rule("greater_than", 2.0), Measurement(3.0, 12), Measurement(2.0, 30))
    assert (judgement.value, judgement.n, judgement.baseline, judgement.baseline_n) == (3.0, 12, 2.0, 30)
    assert judgement.change == pytest.approx(0.5) and judgement.p_value is None and judgement.reason is None
    alone = judge(make_rule("greater_than", 2.0), Measurement(3.0, 12), None)
    assert (alone.baseline, alone.change, alone.baseline_n) == (None, None, None)


def test_absolute_judgement_change_has_the_sign_of_the_move_even_from_a_negative_baseline() -> None:
    # The seed's rule: NPS below 0, with the previous period as context. −20 → −40 is a fall (−100 %).
    seed_rule = make_rule("less_than", 0.0, condition={"metric": "nps_score", "period_days": 7})
    judgement = judge(seed_rule, Measurement(-40.0, 50), Measurement(-20.0, 60))
    assert verdict(judgement) == (True, False)
    assert judgement.change == pytest.approx(-1.0)
    assert judge(seed_rule, Measurement(-10.0, 50), Measurement(-20.0, 60)).change == pytest.approx(0.5)


# ---- relative comparisons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "expected"),
    [
        (5.0, (False, False)),
        (4.9, (True, False)),
        (7.4, (False, False)),
        (7.5, (False, True)),
        (12.0, (False, True)),
    ],
)
def test_drop_pct_greater_than_boundaries_with_recovery(measured: float, expected: tuple[bool, bool]) -> None:
    rule = make_rule("drop_pct_greater_than", 50.0, recovery_threshold=25.0)
    judgement = judge(rule, value(measured), value(10.0))
    assert verdict(judgement) == expected
    assert judgement.change == pytest.approx(measured / 10.0 - 1)
    assert judgement.p_value is None  # no statistics: nothing to test, and the rule does not need a test


@pytest.mark.parametrize(
    ("measured", "expected"), [(6.0, (False, True)), (6.04, (True, False)), (3.0, (False, True))]
)
def test_rise_pct_greater_than_boundaries(measured: float, expected: tuple[bool, bool]) -> None:
    judgement = judge(make_rule("rise_pct_greater_than", 50.0), value(measured), value(4.0))
    assert verdict(judgement) == expected


def test_relative_change_is_measured_against_the_size_of_a_negative_baseline() -> None:
    # NPS can be negative: −20 → −40 is a drop of 100 % of the baseline's size, not a rise.
    judgement = judge(make_rule("drop_pct_greater_than", 50.0), value(-40.0), value(-20.0))
    assert judgement.change == pytest.approx(-1.0) and verdict(judgement) == (True, False)
    better = judge(make_rule("drop_pct_greater_than", 50.0), value(-10.0), value(-20.0))
    assert better.change == pytest.approx(0.5) and verdict(better) == (False, True)


# ---- no data -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "comparison", ["less_than", "greater_than", "drop_pct_greater_than", "significant_rise"]
)
def test_below_min_sample_is_no_data_never_healthy(comparison: str) -> None:
    rule = make_rule(comparison, 10.0 if comparison != "less_than" else 0.0, min_sample=30)
    judgement = judge(rule, Measurement(-100.0, 29), Measurement(1.0, 500))
    assert judgement.no_data and verdict(judgement) == (None, None)
    assert judgement.reason == "n = 29 is below min_sample 30"
    assert (judgement.value, judgement.n) == (-100.0, 29)
    at_minimum = judge(rule, Measurement(-100.0, 30), Measurement(1.0, 500))
    assert not at_minimum.no_data  # n = min_sample is enough


def test_a_baseline_below_min_sample_is_no_data() -> None:
    rule = make_rule("drop_pct_greater_than", 10.0, min_sample=30)
    judgement = judge(rule, Measurement(1.0, 100), Measurement(5.0, 12))
    assert judgement.no_data and judgement.reason == "baseline n = 12 is below min_sample 30"
    assert (judgement.baseline, judgement.baseline_n) == (5.0, 12)


def test_missing_values_and_missing_or_zero_baselines_are_no_data() -> None:
    rule = make_rule("rise_pct_greater_than", 10.0)
    empty = judge(rule, Measurement(None, 0, None, "no active users in the window"), value(1.0))
    assert empty.no_data and empty.reason == "no active users in the window"
    assert judge(rule, Measurement(None, 0), value(1.0)).reason == "no value in the period"
    assert judge(rule, value(2.0), None).reason == "no baseline value"
    assert judge(rule, value(2.0), Measurement(None, 40)).reason == "no baseline value"
    zero = judge(rule, value(2.0), value(0.0))
    assert zero.no_data and zero.reason == "the baseline is 0, so a percentage change is undefined"
    # An absolute comparison needs no baseline at all.
    assert verdict(judge(make_rule("greater_than", 1.0), value(2.0), value(0.0))) == (True, False)


# ---- significance ---------------------------------------------------------------------------------------------


def welch_p(current: list[float], baseline: list[float]) -> float:
    return float(stats.ttest_ind(current, baseline, equal_var=False).pvalue)


def test_significant_rise_fires_on_a_large_significant_effect_with_scipys_p_value() -> None:
    rule = make_rule("significant_rise", 75.0, alpha=0.01)
    judgement = judge(rule, sample(SPIKE_VALUES), sample(BASE_VALUES))
    assert verdict(judgement) == (True, False)
    assert judgement.change == pytest.approx(2.0)
    assert judgement.p_value == pytest.approx(welch_p(SPIKE_VALUES, BASE_VALUES), rel=1e-6, abs=1e-300)
    assert judgement.p_value < 1e-12
    assert (judgement.n, judgement.baseline_n) == (40, 40)


def test_a_large_effect_that_is_not_significant_does_not_fire() -> None:
    noisy = [0, 0, 0, 0, 9]  # mean 1.8: +80 % on five users, one of them very noisy
    rule = make_rule("significant_rise", 75.0, alpha=0.01)
    judgement = judge(rule, sample(noisy), sample(BASE_VALUES))
    expected_p = welch_p(noisy, BASE_VALUES)
    assert judgement.p_value == pytest.approx(expected_p, rel=1e-6)
    assert expected_p > 0.3
    assert judgement.change == pytest.approx(0.8)
    assert judgement.triggered is False
    # The same effect without a test fires: that is exactly what significant_* guards against.
    assert judge(make_rule("rise_pct_greater_than", 75.0), sample(noisy), sample(BASE_VALUES)).triggered


def test_a_significant_effect_below_the_floor_does_not_fire() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.poisson(1.0, 4000).astype(float)
    current = rng.poisson(1.1, 4000).astype(float)
    rule = make_rule("significant_rise", 25.0, alpha=0.01)
    judgement = judge(rule, sample(list(current)), sample(list(baseline)))
    expected_p = welch_p(list(current), list(baseline))
    assert judgement.p_value == pytest.approx(expected_p, rel=1e-6, abs=1e-300)
    assert expected_p < 0.01
    assert 0 < judgement.change < 0.25  # type: ignore[operator]
    assert judgement.triggered is False


def test_the_floor_is_inclusive_for_significant_comparisons() -> None:
    # Effect exactly at the floor (+100 %), clearly significant: fires (the change is "at least" the threshold).
    baseline = [1.0, 1.0, 2.0, 0.0] * 25
    current = [2.0, 2.0, 4.0, 0.0] * 25
    judgement = judge(make_rule("significant_rise", 100.0), sample(current), sample(baseline))
    assert judgement.change == pytest.approx(1.0) and judgement.triggered is True


def test_significant_drop_on_proportions_matches_welch_with_binomial_variance() -> None:
    current, baseline = (
        Measurement(0.3, 200, BinomialStatistic(200, 60)),
        Measurement(0.5, 300, BinomialStatistic(300, 150)),
    )
    judgement = judge(make_rule("significant_drop", 20.0), current, baseline)
    v1, v0 = 0.3 * 0.7 / 200, 0.5 * 0.5 / 300
    t = (0.3 - 0.5) / math.sqrt(v1 + v0)
    df = (v1 + v0) ** 2 / (v1**2 / 199 + v0**2 / 299)
    assert judgement.p_value == pytest.approx(2 * stats.t.cdf(-abs(t), df), rel=1e-6)
    assert judgement.change == pytest.approx(-0.4)
    assert verdict(judgement) == (True, False)
    # The same drop judged as a rise is not a rise at all.
    assert judge(make_rule("significant_rise", 20.0), current, baseline).triggered is False


def test_without_statistics_a_significant_comparison_cannot_fire() -> None:
    judgement = judge(make_rule("significant_rise", 10.0), value(10.0, 100), value(1.0, 100))
    assert judgement.p_value is None and judgement.triggered is False


def test_significant_rise_hysteresis_recovers_only_below_the_recovery_threshold() -> None:
    rule = make_rule("significant_rise", 75.0, recovery_threshold=30.0, alpha=0.01)
    baseline = sample(BASE_VALUES)
    half = [v * 1.5 for v in BASE_VALUES]  # +50 %: below the trigger, above the recovery point
    judgement = judge(rule, sample(half), baseline)
    assert judgement.change == pytest.approx(0.5)
    assert verdict(judgement) == (False, False)
    small = [v * 1.2 for v in BASE_VALUES]  # +20 %: recovered
    assert verdict(judge(rule, sample(small), baseline)) == (False, True)


def test_a_firing_significant_rule_does_not_recover_on_a_noisy_week_far_above_recovery() -> None:
    # +150 % on a small, noisy week is not significant at α = 0.01 — but it is no evidence of recovery either.
    rule = make_rule("significant_rise", 75.0, recovery_threshold=30.0, alpha=0.01)
    noisy = [0.0, 0.0, 0.0, 0.0, 0.0, 15.0]  # mean 2.5
    judgement = judge(rule, sample(noisy), sample(BASE_VALUES))
    assert judgement.p_value is not None and judgement.p_value > 0.01
    assert judgement.change == pytest.approx(1.5)
    assert verdict(judgement) == (False, False)
