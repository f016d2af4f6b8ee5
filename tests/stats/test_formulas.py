"""tools.stats against independent implementations (scipy, statsmodels, raw-data numpy) to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from tools.stats import (
    AnalysisSettings,
    BinomialStatistic,
    CupedStatistic,
    GaussianPrior,
    MeanStatistic,
    MetricInput,
    RatioStatistic,
    analyze_metrics,
    compare,
    srm_p_value,
)
from tools.stats import power as power_calc
from tools.stats.corrections import benjamini_hochberg, holm
from tools.stats.sequential import half_width

RNG = np.random.default_rng(20261128)
ABSOLUTE = AnalysisSettings(difference="absolute")


def test_welch_matches_scipy_ttest_from_stats() -> None:
    a, b = RNG.normal(10, 3, 800), RNG.normal(10.4, 5, 650)
    result = compare(MeanStatistic.from_values(a), [MeanStatistic.from_values(b)], ABSOLUTE)[0]
    reference = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert result.effect == pytest.approx(b.mean() - a.mean(), abs=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    interval = reference.confidence_interval(0.95)
    assert result.ci == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_one_sided_matches_scipy() -> None:
    a, b = RNG.normal(5, 2, 400), RNG.normal(5.2, 2, 400)
    settings = AnalysisSettings(difference="absolute", one_sided=True)
    result = compare(MeanStatistic.from_values(a), [MeanStatistic.from_values(b)], settings)[0]
    reference = scipy_stats.ttest_ind(b, a, equal_var=False, alternative="greater")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.ci[0] == pytest.approx(reference.confidence_interval(0.95).low, rel=1e-9)
    assert result.ci[1] is None


def test_non_inferiority_is_a_shifted_one_sided_test() -> None:
    a, b = RNG.normal(100, 20, 500), RNG.normal(99, 20, 500)
    margin = 5.0
    settings = AnalysisSettings(difference="absolute", non_inferiority_margin=margin)
    result = compare(MeanStatistic.from_values(a), [MeanStatistic.from_values(b)], settings)[0]
    reference = scipy_stats.ttest_ind(b + margin, a, equal_var=False, alternative="greater")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    lower_better = AnalysisSettings(
        difference="absolute", non_inferiority_margin=margin, lower_is_better=True
    )
    flipped = compare(MeanStatistic.from_values(a), [MeanStatistic.from_values(b)], lower_better)[0]
    reference_lower = scipy_stats.ttest_ind(b - margin, a, equal_var=False, alternative="less")
    assert flipped.p_value == pytest.approx(reference_lower.pvalue, rel=1e-9)
    assert flipped.ci[0] is None


def test_relative_effect_delta_method() -> None:
    a, b = BinomialStatistic(10_000, 1_000), BinomialStatistic(10_000, 1_100)
    result = compare(a, [b])[0]
    var_a, var_b = 0.1 * 0.9 / 10_000, 0.11 * 0.89 / 10_000
    expected_se = np.sqrt(var_b / 0.1**2 + var_a * 0.11**2 / 0.1**4)
    assert result.effect == pytest.approx(0.1, rel=1e-12)
    assert result.se == pytest.approx(expected_se, rel=1e-12)
    df = (var_a + var_b) ** 2 / (var_a**2 / 9_999 + var_b**2 / 9_999)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(0.1 / expected_se, df), rel=1e-9)


def test_ratio_delta_method_matches_linearisation_on_raw_data() -> None:
    sessions = RNG.poisson(5, 3000) + 1.0
    errors = RNG.binomial(sessions.astype(int), 0.1).astype(float)
    statistic = RatioStatistic(
        n=3000,
        sum=errors.sum(),
        sum_squares=(errors**2).sum(),
        denominator_sum=sessions.sum(),
        denominator_sum_squares=(sessions**2).sum(),
        main_denominator_sum_product=(errors * sessions).sum(),
    )
    ratio = errors.sum() / sessions.sum()
    linearised = (errors - ratio * sessions) / sessions.mean()  # influence function of the ratio
    assert statistic.mean == pytest.approx(ratio, rel=1e-12)
    assert statistic.variance == pytest.approx(linearised.var(ddof=1), rel=1e-9)


def test_cuped_pooled_theta_matches_ols_on_pooled_data() -> None:
    covariate = RNG.normal(50, 10, 4000)
    outcome = 0.8 * covariate + RNG.normal(0, 5, 4000)
    outcome[2000:] += 1.0
    arms = [
        CupedStatistic(
            n=2000,
            sum=outcome[s].sum(),
            sum_squares=(outcome[s] ** 2).sum(),
            covariate_sum=covariate[s].sum(),
            covariate_sum_squares=(covariate[s] ** 2).sum(),
            main_covariate_sum_product=(outcome[s] * covariate[s]).sum(),
        )
        for s in (slice(0, 2000), slice(2000, 4000))
    ]
    theta = np.cov(outcome, covariate, ddof=1)[0, 1] / covariate.var(ddof=1)
    result = analyze_metrics([MetricInput("m", arms, ["a", "b"], ABSOLUTE)])[0].variants[0]
    adjusted = outcome - theta * covariate
    expected = adjusted[2000:].mean() - adjusted[:2000].mean()
    expected_var = adjusted[:2000].var(ddof=1) / 2000 + adjusted[2000:].var(ddof=1) / 2000
    assert result.effect == pytest.approx(expected, rel=1e-9)
    assert result.se == pytest.approx(np.sqrt(expected_var), rel=1e-9)
    plain = compare(
        MeanStatistic(2000, arms[0].sum, arms[0].sum_squares), [MeanStatistic(2000, arms[1].sum, arms[1].sum_squares)],
        ABSOLUTE,
    )[0]  # fmt: skip
    assert result.se < plain.se * 0.6  # the covariate explains about 70% of the variance


def test_bayesian_flat_and_proper_prior() -> None:
    a, b = BinomialStatistic(5_000, 500), BinomialStatistic(5_000, 560)
    flat = compare(a, [b], AnalysisSettings(engine="bayesian"))[0]
    assert flat.chance_to_win == pytest.approx(
        scipy_stats.norm.sf(0, loc=flat.effect, scale=flat.se), rel=1e-9
    )
    assert flat.ci == pytest.approx(scipy_stats.norm.interval(0.95, loc=flat.effect, scale=flat.se), rel=1e-9)
    draws = RNG.normal(flat.effect, flat.se, 2_000_000)
    assert flat.risk[0] == pytest.approx(np.maximum(draws, 0).mean(), rel=5e-3)
    assert flat.risk[1] == pytest.approx(np.maximum(-draws, 0).mean(), rel=5e-2)
    prior = GaussianPrior(mean=0.0, stddev=0.05)
    shrunk = compare(a, [b], AnalysisSettings(engine="bayesian", prior=prior))[0]
    precision = 1 / flat.se**2 + 1 / 0.05**2
    posterior_mean = (flat.effect / flat.se**2) / precision
    assert shrunk.effect == pytest.approx(posterior_mean, rel=1e-9)
    assert 0 < shrunk.effect < flat.effect
    assert shrunk.chance_to_win == pytest.approx(
        scipy_stats.norm.sf(0, posterior_mean, precision**-0.5), rel=1e-9
    )


def test_sequential_half_width_formula_and_wider_than_fixed() -> None:
    a, b = BinomialStatistic(20_000, 2_000), BinomialStatistic(20_000, 2_150)
    fixed = compare(a, [b])[0]
    sequential = compare(a, [b], AnalysisSettings(sequential=True, sequential_tuning=5000))[0]
    n, alpha, tuning = 40_000, 0.05, 5000
    rho2 = (-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning
    s2 = fixed.se**2 * n
    expected = np.sqrt(s2) * np.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha)
    )
    assert (sequential.ci[1] - sequential.ci[0]) / 2 == pytest.approx(expected, rel=1e-9)
    assert sequential.ci[1] - sequential.ci[0] > fixed.ci[1] - fixed.ci[0]
    assert sequential.p_value > fixed.p_value
    # The always-valid p-value is where the sequence just touches 0.
    width = half_width(np.array([fixed.se]), np.array([n]), alpha=sequential.p_value, tuning=tuning)[0]
    assert width == pytest.approx(abs(sequential.effect), rel=1e-6)


def test_srm_matches_scipy_chisquare() -> None:
    observed = [5100, 4900, 10_300]
    expected = scipy_stats.chisquare(observed, f_exp=np.array([0.25, 0.25, 0.5]) * sum(observed)).pvalue
    assert srm_p_value(observed, [0.25, 0.25, 0.5]) == pytest.approx(expected, rel=1e-9)
    assert srm_p_value([100, 1], [1.0, 0.0]) == 0.0


def test_corrections_match_statsmodels() -> None:
    p = RNG.uniform(0, 0.2, 30)
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12)
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1], rel=1e-12)


def test_power_matches_statsmodels() -> None:
    sigma, delta = 4.0, 0.5
    ours = power_calc.sample_size_per_arm(
        delta, baseline_mean=10.0, variance_control=sigma**2, relative=False
    )
    reference = NormalIndPower().solve_power(effect_size=delta / sigma, alpha=0.05, power=0.8, ratio=1.0)
    assert ours == int(np.ceil(reference))
    mde = power_calc.minimum_detectable_effect(
        ours, baseline_mean=10.0, variance_control=sigma**2, relative=False
    )
    assert mde == pytest.approx(delta, rel=1e-2)
    sequential_n = power_calc.sample_size_per_arm(
        delta, baseline_mean=10.0, variance_control=sigma**2, relative=False, sequential_tuning=5000
    )
    assert sequential_n > ours
    plan = power_calc.plan(ours, arms=2, daily_units=200)
    assert plan.days == int(np.ceil(2 * ours / 200))
    remaining = power_calc.remaining_to_power(ours, ours // 2, daily_units=200)
    assert remaining.more_units_per_arm == ours - ours // 2 and not remaining.reached
    assert remaining.more_days == int(np.ceil(2 * (ours - ours // 2) / 200))
    assert power_calc.remaining_to_power(ours, ours + 5).reached


def test_binomial_power_uses_both_arm_variances() -> None:
    var_a, var_b = power_calc.binomial_variances(0.1, 0.1)
    n = power_calc.sample_size_per_arm(
        0.1, baseline_mean=0.1, variance_control=var_a, variance_treatment=var_b
    )
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    assert n == int(np.ceil(z**2 * (0.09 + 0.11 * 0.89) / 0.01**2))


@pytest.mark.parametrize("bad", [{"mde": 0}, {"alpha": 1.5}, {"power": 0}, {"baseline_mean": 0.0}])
def test_power_inputs_are_validated(bad: dict[str, float]) -> None:
    arguments = {"mde": 0.1, "baseline_mean": 1.0, "variance_control": 1.0, "alpha": 0.05, "power": 0.8} | bad
    mde = arguments.pop("mde")
    with pytest.raises(power_calc.PowerInputError):
        power_calc.sample_size_per_arm(mde, **arguments)
