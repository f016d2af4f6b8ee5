"""Edge cases: zero conversions, identical arms, an empty arm, huge n, tiny variance, impossible sums."""

from __future__ import annotations

import math

import pytest

from tools.stats import (
    AnalysisSettings,
    BinomialStatistic,
    MeanStatistic,
    MetricInput,
    QuantileStatistic,
    RatioStatistic,
    StatisticInputError,
    analyze_metrics,
    compare,
    quantile_rank_bounds,
)

ABSOLUTE = AnalysisSettings(difference="absolute")


def test_zero_conversions_in_both_arms_is_zero_variance() -> None:
    result = compare(BinomialStatistic(1000, 0), [BinomialStatistic(1000, 0)], ABSOLUTE)[0]
    assert result.error == "cannot compute: zero variance in both arms"
    relative = compare(BinomialStatistic(1000, 0), [BinomialStatistic(1000, 5)])[0]
    assert relative.error is not None and "control mean is 0" in relative.error


def test_zero_conversions_in_control_only_still_analyses_absolute() -> None:
    result = compare(BinomialStatistic(1000, 0), [BinomialStatistic(1000, 10)], ABSOLUTE)[0]
    assert result.error is None and result.effect == pytest.approx(0.01) and result.p_value is not None


def test_identical_arms() -> None:
    for engine in ("frequentist", "bayesian"):
        result = compare(
            BinomialStatistic(5000, 500), [BinomialStatistic(5000, 500)], AnalysisSettings(engine=engine)
        )[0]
        assert result.effect == 0.0
        if engine == "frequentist":
            assert result.p_value == pytest.approx(1.0)
        else:
            assert result.chance_to_win == pytest.approx(0.5)
            assert result.risk is not None and result.risk[0] == pytest.approx(result.risk[1])


@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_or_single_unit_arm(n: int) -> None:
    result = compare(BinomialStatistic(1000, 100), [BinomialStatistic(n, 0)])[0]
    assert result.error == f"cannot compute: variant n = {n} ≤ 1"
    control_empty = compare(MeanStatistic(n, 0.0, 0.0), [MeanStatistic(10, 5.0, 5.0)], ABSOLUTE)[0]
    assert control_empty.error == f"cannot compute: control n = {n} ≤ 1"


def test_huge_n() -> None:
    n = 10**9
    result = compare(BinomialStatistic(n, n // 10), [BinomialStatistic(n, n // 10 + 50_000)])[0]
    assert result.error is None
    assert result.effect == pytest.approx(0.0005, rel=1e-6)
    assert result.p_value is not None and 0 < result.p_value < 1e-3  # z ≈ 3.7
    assert all(math.isfinite(x) for x in (result.se, result.ci[0], result.ci[1]))


def test_tiny_variance() -> None:
    a = MeanStatistic(1000, 1000 * 5.0, 1000 * 25.0 + 1e-9)
    b = MeanStatistic(1000, 1000 * 5.000001, 1000 * 5.000001**2 + 1e-9)
    result = compare(a, [b], ABSOLUTE)[0]
    assert result.error is None or result.error.startswith("cannot compute")
    if result.error is None:
        assert math.isfinite(result.p_value or 0.0)


def test_ratio_with_zero_denominator() -> None:
    zero = RatioStatistic(10, 0, 0, 0, 0, 0)
    fine = RatioStatistic(10, 5, 5, 20, 40, 10)
    assert compare(zero, [fine])[0].error == "cannot compute: control denominator sum is 0"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: MeanStatistic(-1, 0, 0), "n"),
        (lambda: MeanStatistic(2.5, 0, 0), "n"),  # type: ignore[arg-type]
        (lambda: MeanStatistic(10, 10, 1), "sum_squares"),
        (lambda: MeanStatistic(10, float("nan"), 1), "sum"),
        (lambda: BinomialStatistic(10, 11), "sum"),
        (lambda: RatioStatistic(10, 1, 1, 10, 1, 1), "denominator_sum_squares"),
        (lambda: QuantileStatistic(10, 1.5, 1, 0, 2), "quantile"),
        (lambda: QuantileStatistic(10, 0.5, 5, 0, 2), "estimate"),
    ],
)
def test_impossible_statistics_are_refused_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(StatisticInputError) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_quantile_metric_uses_order_statistics() -> None:
    lower_rank, upper_rank = quantile_rank_bounds(1000, 0.5)
    assert (lower_rank, upper_rank) == (469, 531)  # 500 ∓ 1.96·√250
    a = QuantileStatistic(1000, 0.5, estimate=600.0, lower_order_statistic=560.0, upper_order_statistic=640.0)
    b = QuantileStatistic(1000, 0.5, estimate=540.0, lower_order_statistic=505.0, upper_order_statistic=575.0)
    result = compare(a, [b], AnalysisSettings(difference="absolute", lower_is_better=True, one_sided=True))[0]
    se_a, se_b = 80 / (2 * 1.959963984540054), 70 / (2 * 1.959963984540054)
    assert result.se == pytest.approx(math.hypot(se_a, se_b), rel=1e-12)
    assert result.effect == -60.0
    assert result.p_value is not None and result.p_value < 0.05  # faster median time-to-value


def test_three_arms_and_srm() -> None:
    arms = [BinomialStatistic(10_000, 1000), BinomialStatistic(10_000, 1100), BinomialStatistic(12_000, 1200)]
    (result,) = analyze_metrics([MetricInput("m", arms, ["a", "b", "c"], weights=[1 / 3] * 3)])
    assert [v.name for v in result.variants] == ["b", "c"]
    assert result.srm and result.srm_p_value is not None and result.srm_p_value < 0.001


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="alpha"):
        AnalysisSettings(alpha=0)
    with pytest.raises(ValueError, match="non_inferiority_margin"):
        AnalysisSettings(non_inferiority_margin=-1)
    with pytest.raises(ValueError, match="two arms"):
        MetricInput("m", [BinomialStatistic(10, 1)], ["a"])


def test_winsorisation_caps_heavy_tails_on_pooled_data() -> None:
    import numpy as np

    from tools.stats.winsorize import caps, winsorize

    values = np.concatenate([np.arange(1, 100, dtype=float), [10_000.0]])
    lower, upper = caps(values, upper_percentile=99.0, lower_percentile=1.0)
    assert upper == pytest.approx(np.percentile(values, 99)) and lower == pytest.approx(
        np.percentile(values, 1)
    )
    capped = winsorize(values, upper_cap=upper, lower_cap=lower)
    assert capped.max() == pytest.approx(upper) and capped.min() == pytest.approx(lower)
    assert MeanStatistic.from_values(capped).mean < MeanStatistic.from_values(values).mean / 1.5
    with pytest.raises(ValueError, match="percentiles"):
        caps(values, upper_percentile=120.0)
    with pytest.raises(ValueError, match="at least one value"):
        caps(np.array([]))
