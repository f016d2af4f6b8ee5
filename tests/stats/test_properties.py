"""Behaviour under simulation (seeded) and invariants under random inputs (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.stats import (
    AnalysisSettings,
    BinomialStatistic,
    MeanStatistic,
    MetricInput,
    analyze_metrics,
    compare,
    srm_p_value,
)
from tools.stats.corrections import benjamini_hochberg, holm

SIMULATIONS = 4000


def _simulated_pairs(rng: np.random.Generator, effect: float, n: int = 400) -> list[MetricInput]:
    """SIMULATIONS experiments of skewed (log-normal) data, as one batch of metrics: one vectorised pass."""
    control = rng.lognormal(0.0, 0.8, size=(SIMULATIONS, n))
    treatment = rng.lognormal(0.0, 0.8, size=(SIMULATIONS, n)) * (1 + effect)
    metrics = []
    for i in range(SIMULATIONS):
        arms = [MeanStatistic(n, float(x.sum()), float((x**2).sum())) for x in (control[i], treatment[i])]
        metrics.append(MetricInput(f"m{i}", arms, ["control", "treatment"]))
    return metrics


def test_false_positive_rate_under_the_null_is_alpha() -> None:
    results = analyze_metrics(_simulated_pairs(np.random.default_rng(1), effect=0.0))
    p_values = np.array([r.variants[0].p_value for r in results])
    assert 0.04 <= np.mean(p_values < 0.05) <= 0.06
    # Uniform, not just right at 5%: deciles hold about a tenth each.
    deciles = np.histogram(p_values, bins=10, range=(0, 1))[0] / SIMULATIONS
    assert np.all(np.abs(deciles - 0.1) < 0.02)


def test_interval_coverage_of_the_relative_effect_is_95_percent() -> None:
    true_relative_effect = 0.05
    results = analyze_metrics(_simulated_pairs(np.random.default_rng(2), effect=true_relative_effect, n=1000))
    covered = [r.variants[0].ci[0] <= true_relative_effect <= r.variants[0].ci[1] for r in results]
    assert 0.935 <= np.mean(covered) <= 0.965


def test_sequential_false_positive_rate_with_twenty_peeks() -> None:
    rng = np.random.default_rng(3)
    experiments, looks, per_look = 2000, 20, 100
    a = rng.binomial(1, 0.2, size=(experiments, looks * per_look)).cumsum(axis=1)
    b = rng.binomial(1, 0.2, size=(experiments, looks * per_look)).cumsum(axis=1)
    sequential = AnalysisSettings(sequential=True, difference="absolute")
    fixed = AnalysisSettings(difference="absolute")
    ever_significant_sequential = np.zeros(experiments, dtype=bool)
    ever_significant_fixed = np.zeros(experiments, dtype=bool)
    for look in range(1, looks + 1):
        n = look * per_look
        column = n - 1
        for settings_, flags in ((sequential, ever_significant_sequential), (fixed, ever_significant_fixed)):
            metrics = [
                MetricInput("m", [BinomialStatistic(n, int(a[i, column])), BinomialStatistic(n, int(b[i, column]))],
                            ["a", "b"], settings_)
                for i in range(experiments)
            ]  # fmt: skip
            p = np.array([r.variants[0].p_value if r.variants[0].p_value is not None else 1.0
                          for r in analyze_metrics(metrics)])  # fmt: skip
            flags |= p < 0.05
    assert np.mean(ever_significant_sequential) <= 0.05
    assert np.mean(ever_significant_fixed) > 0.10  # peeking at a fixed-horizon test does inflate it


counts = st.integers(min_value=2, max_value=10**9)


@settings(max_examples=300, deadline=None)
@given(n_a=counts, n_b=counts, rate_a=st.floats(0, 1), rate_b=st.floats(0, 1),
       difference=st.sampled_from(["relative", "absolute"]), engine=st.sampled_from(["frequentist", "bayesian"]),
       sequential=st.booleans())  # fmt: skip
def test_results_are_finite_or_an_explicit_error(
    n_a: int, n_b: int, rate_a: float, rate_b: float, difference: str, engine: str, sequential: bool
) -> None:
    a, b = BinomialStatistic(n_a, round(n_a * rate_a)), BinomialStatistic(n_b, round(n_b * rate_b))
    analysis = AnalysisSettings(engine=engine, difference=difference, sequential=sequential)  # type: ignore[arg-type]
    result = compare(a, [b], analysis)[0]
    if result.error is not None:
        assert result.error.startswith("cannot compute:")
        assert result.effect is None and result.p_value is None and result.ci is None
        return
    numbers = [result.effect, result.se, *(result.ci or ())]
    numbers += [result.p_value, result.chance_to_win]
    assert all(x is None or math.isfinite(x) for x in numbers)
    assert result.ci is not None and result.ci[0] is not None and result.ci[1] is not None
    assert result.ci[0] <= result.effect <= result.ci[1]
    if result.p_value is not None:
        assert 0.0 <= result.p_value <= 1.0
    if result.chance_to_win is not None:
        assert 0.0 <= result.chance_to_win <= 1.0 and result.risk is not None and min(result.risk) >= 0


@settings(max_examples=200, deadline=None)
@given(n=st.integers(10, 10**6), mean_a=st.floats(-100, 100), mean_b=st.floats(-100, 100),
       sd=st.floats(0.01, 50))  # fmt: skip
def test_swapping_arms_negates_the_absolute_effect_and_keeps_the_p_value(
    n: int, mean_a: float, mean_b: float, sd: float
) -> None:
    def statistic(mean: float) -> MeanStatistic:
        return MeanStatistic(n, mean * n, (sd**2 * (n - 1)) + mean**2 * n)

    absolute = AnalysisSettings(difference="absolute")
    forward = compare(statistic(mean_a), [statistic(mean_b)], absolute)[0]
    backward = compare(statistic(mean_b), [statistic(mean_a)], absolute)[0]
    assert forward.effect is not None and backward.effect is not None
    assert math.isclose(forward.effect, -backward.effect, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(forward.p_value or 0, backward.p_value or 0, rel_tol=1e-6, abs_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_corrections_never_lower_a_p_value_and_bh_is_no_stricter_than_holm(p_values: list[float]) -> None:
    p = np.asarray(p_values)
    assert np.all(holm(p) >= p - 1e-15) and np.all(benjamini_hochberg(p) >= p - 1e-15)
    assert np.all(benjamini_hochberg(p) <= holm(p) + 1e-15)
    assert np.all(holm(p) <= 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**7), min_size=2, max_size=6))
def test_srm_p_value_is_a_probability(observed: list[int]) -> None:
    p = srm_p_value(observed, [1 / len(observed)] * len(observed))
    assert 0.0 <= p <= 1.0
