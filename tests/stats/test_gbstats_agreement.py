"""Agreement with GrowthBook's own engine (gbstats 0.8.0, in a venv of its own) on the same sufficient statistics.

Where we deliberately differ (documented in docs/statistics.md), the case says so: CUPED θ is pooled over all arms
here (gbstats pools per control–treatment pair), and our sequential p-value is the smallest α whose confidence
sequence excludes 0 (gbstats reports 1/e-value), so for sequential cases only the interval is compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.reference.gbstats_env import ensure_gbstats_venv, gbstats_unavailable_reason, run_gbstats
from tools.stats import (
    AnalysisSettings,
    BinomialStatistic,
    CupedStatistic,
    GaussianPrior,
    MeanStatistic,
    MetricInput,
    RatioStatistic,
    Statistic,
    analyze_metrics,
)

RNG = np.random.default_rng(8)


def _mean_arm(values: np.ndarray) -> dict[str, float]:
    return {"n": int(values.size), "sum": float(values.sum()), "sum_squares": float((values**2).sum())}


def _ratio_arm(numerator: np.ndarray, denominator: np.ndarray) -> dict[str, float]:
    return {**_mean_arm(numerator), "denominator_sum": float(denominator.sum()),
            "denominator_sum_squares": float((denominator**2).sum()),
            "main_denominator_sum_product": float((numerator * denominator).sum())}  # fmt: skip


def _cuped_arm(outcome: np.ndarray, covariate: np.ndarray) -> dict[str, float]:
    return {**_mean_arm(outcome), "covariate_sum": float(covariate.sum()),
            "covariate_sum_squares": float((covariate**2).sum()),
            "main_covariate_sum_product": float((outcome * covariate).sum())}  # fmt: skip


def _cases() -> dict[str, dict[str, Any]]:
    revenue = [RNG.lognormal(3, 1, 3000), RNG.lognormal(3.05, 1, 3100)]
    sessions = [RNG.poisson(4, 2500) + 1.0 for _ in range(2)]
    errors = [
        RNG.binomial(s.astype(int), p).astype(float) for s, p in zip(sessions, (0.1, 0.085), strict=True)
    ]
    pre = [RNG.normal(20, 5, 2000) for _ in range(2)]
    post = [0.8 * x + RNG.normal(0, 3, 2000) + shift for x, shift in zip(pre, (0.0, 0.4), strict=True)]
    binomial = [{"n": 10_000, "sum": 1_000}, {"n": 10_000, "sum": 1_090}]
    base = {"engine": "frequentist", "difference": "relative", "alpha": 0.05, "one_sided": False,
            "sequential": False, "sequential_tuning": 5000, "prior": None}  # fmt: skip
    return {
        "binomial 2-arm relative": {**base, "kind": "binomial", "variants": binomial},
        "revenue mean absolute": {**base, "kind": "mean", "difference": "absolute",
                                  "variants": [_mean_arm(v) for v in revenue]},
        "binomial 3-arm": {**base, "kind": "binomial",
                           "variants": [*binomial, {"n": 10_200, "sum": 940}]},
        "ratio errors per session": {**base, "kind": "ratio",
                                     "variants": [_ratio_arm(e, s) for e, s in zip(errors, sessions, strict=True)]},
        "cuped pooled theta": {**base, "kind": "cuped", "theta": "all_arms",
                               "variants": [_cuped_arm(y, x) for y, x in zip(post, pre, strict=True)]},
        "bayesian flat prior": {**base, "kind": "binomial", "engine": "bayesian", "variants": binomial},
        "bayesian proper prior": {**base, "kind": "binomial", "engine": "bayesian",
                                  "prior": {"mean": 0.0, "stddev": 0.05}, "variants": binomial},
        "one-sided": {**base, "kind": "mean", "one_sided": True, "variants": [_mean_arm(v) for v in revenue]},
        "sequential": {**base, "kind": "binomial", "sequential": True, "variants": binomial},
    }  # fmt: skip


def _statistic(kind: str, arm: dict[str, float]) -> Statistic:
    if kind == "binomial":
        return BinomialStatistic(int(arm["n"]), arm["sum"])
    if kind == "mean":
        return MeanStatistic(int(arm["n"]), arm["sum"], arm["sum_squares"])
    if kind == "ratio":
        return RatioStatistic(n=int(arm["n"]), **{k: v for k, v in arm.items() if k != "n"})
    return CupedStatistic(n=int(arm["n"]), **{k: v for k, v in arm.items() if k != "n"})


def _ours(case: dict[str, Any]) -> list[Any]:
    prior = case["prior"]
    settings = AnalysisSettings(
        engine=case["engine"], difference=case["difference"], alpha=case["alpha"], one_sided=case["one_sided"],
        sequential=case["sequential"], sequential_tuning=case["sequential_tuning"],
        prior=GaussianPrior(prior["mean"], prior["stddev"]) if prior else None,
    )  # fmt: skip
    arms = [_statistic(case["kind"], arm) for arm in case["variants"]]
    names = [f"v{i}" for i in range(len(arms))]
    return list(analyze_metrics([MetricInput("m", arms, names, settings)])[0].variants)


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    if ensure_gbstats_venv() is None:
        pytest.skip(f"gbstats reference unavailable: {gbstats_unavailable_reason()}")
    cases = _cases()
    results = run_gbstats(list(cases.values()))
    return {
        name: {"case": case, "result": result}
        for (name, case), result in zip(cases.items(), results, strict=True)
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_agrees_with_gbstats(reference: dict[str, dict[str, Any]], name: str) -> None:
    case, theirs = reference[name]["case"], reference[name]["result"]
    assert theirs["error"] is None, theirs["error"]
    ours = _ours(case)
    assert len(ours) == len(theirs["variants"])
    for mine, gb in zip(ours, theirs["variants"], strict=True):
        assert gb["error"] is None and mine.error is None
        assert mine.effect == pytest.approx(gb["effect"], rel=1e-9, abs=1e-12)
        assert mine.se == pytest.approx(gb["se"], rel=1e-9)
        lower, upper = gb["ci"]
        assert mine.ci[0] == pytest.approx(lower, rel=1e-7)
        assert (
            (mine.ci[1] is None)
            if upper in (None, float("inf"))
            else mine.ci[1] == pytest.approx(upper, rel=1e-7)
        )
        if case["engine"] == "bayesian":
            assert mine.chance_to_win == pytest.approx(gb["chance_to_win"], rel=1e-7)
            assert mine.risk == pytest.approx(gb["risk"], rel=1e-6, abs=1e-12)
        elif not case["sequential"]:
            assert mine.p_value == pytest.approx(gb["p_value"], rel=1e-7, abs=1e-15)
