"""Run GrowthBook's gbstats (0.8.0) on sufficient-statistic cases: JSON on stdin, JSON on stdout.

This script runs under the Python of the gbstats venv (`tests/reference/gbstats_env.py` creates it), never
under the project's own venv: gbstats pins numpy<2, pandas<2 and scipy<2. It imports only the stdlib at
module level; gbstats is imported inside functions, so our linters can read this file without gbstats.

Input:  {"mode": "analyze" | "time" | "info", "repeat": int, "cases": [case, …]}
Output: analyze → {"results": [{"variants": [entry, …], "error": null | str}, …]} (one per case, in order)
        time    → {"seconds_per_repeat": [float, …]}
        info    → {"python": str, "gbstats": str, "numpy": str, "scipy": str, "pandas": str, "pydantic": str}

The case and entry schemas, and the gbstats conventions they map onto, are in tests/reference/README.md.
A bad case never stops the run: its entries carry "error" and the other cases are analysed as usual.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

KINDS = ("binomial", "mean", "ratio", "cuped")
ENGINES = ("frequentist", "bayesian")
DIFFERENCES = ("relative", "absolute")


class CaseError(ValueError):
    """The case itself is malformed (not a gbstats failure)."""


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CaseError(f"{field} must be a number, got {value!r}")
    return float(value)


def _count(value: Any, field: str) -> int:
    number = _number(value, field)
    if not math.isfinite(number) or number != int(number):
        raise CaseError(f"{field} must be a whole number, got {value!r}")
    return int(number)


def _variant_field(variant: dict[str, Any], name: str, index: int) -> float:
    if name not in variant:
        raise CaseError(f"variants[{index}] lacks {name!r}")
    return _number(variant[name], f"variants[{index}].{name}")


def _statistic(kind: str, variant: dict[str, Any], index: int) -> Any:
    """A fresh gbstats statistic for one arm (fresh per comparison: gbstats mutates RA statistics' theta)."""
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )

    if not isinstance(variant, dict):
        raise CaseError(f"variants[{index}] must be an object")
    n = _count(variant.get("n"), f"variants[{index}].n")
    main_sum = _variant_field(variant, "sum", index)
    if kind == "binomial":
        # ProportionStatistic has no sum_squares field (it is Σx = Σx² for 0/1 data); ours is ignored.
        return ProportionStatistic(n=n, sum=main_sum)
    main = SampleMeanStatistic(n=n, sum=main_sum, sum_squares=_variant_field(variant, "sum_squares", index))
    if kind == "mean":
        return main
    if kind == "ratio":
        denominator = SampleMeanStatistic(
            n=n,
            sum=_variant_field(variant, "denominator_sum", index),
            sum_squares=_variant_field(variant, "denominator_sum_squares", index),
        )
        return RatioStatistic(
            n=n,
            m_statistic=main,
            d_statistic=denominator,
            m_d_sum_of_products=_variant_field(variant, "main_denominator_sum_product", index),
        )
    if kind == "cuped":
        covariate = SampleMeanStatistic(
            n=n,
            sum=_variant_field(variant, "covariate_sum", index),
            sum_squares=_variant_field(variant, "covariate_sum_squares", index),
        )
        # theta=0 as gbstats.gbstats.variation_statistic_from_metric_row does; BaseABTest.__init__ sets it.
        return RegressionAdjustedStatistic(
            n=n,
            post_statistic=main,
            pre_statistic=covariate,
            post_pre_sum_of_products=_variant_field(variant, "main_covariate_sum_product", index),
            theta=0,
        )
    raise CaseError(f"kind must be one of {KINDS}, got {kind!r}")


def _all_arms_theta(statistics: list[Any]) -> float:
    """gbstats.models.statistics.compute_theta, generalised from two arms to all arms of the case."""
    from gbstats.models.statistics import RegressionAdjustedStatistic, create_joint_statistic

    n = sum(s.n for s in statistics)
    post, pre = statistics[0].post_statistic, statistics[0].pre_statistic
    for s in statistics[1:]:
        post = create_joint_statistic(a=post, b=s.post_statistic, n=n)
        pre = create_joint_statistic(a=pre, b=s.pre_statistic, n=n)
    if pre.variance == 0 or post.variance == 0:
        return 0.0
    joint = RegressionAdjustedStatistic(
        n=n,
        post_statistic=post,
        pre_statistic=pre,
        post_pre_sum_of_products=sum(s.post_pre_sum_of_products for s in statistics),
        theta=0,
    )
    return float(joint.covariance / joint.pre_statistic.variance)


def _settings(case: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(case, dict):
        raise CaseError("case must be an object")
    kind = case.get("kind")
    if kind not in KINDS:
        raise CaseError(f"kind must be one of {KINDS}, got {kind!r}")
    engine = case.get("engine", "frequentist")
    if engine not in ENGINES:
        raise CaseError(f"engine must be one of {ENGINES}, got {engine!r}")
    difference = case.get("difference", "relative")
    if difference not in DIFFERENCES:
        raise CaseError(f"difference must be one of {DIFFERENCES}, got {difference!r}")
    alpha = _number(case.get("alpha", 0.05), "alpha")
    if not 0 < alpha < 1:
        raise CaseError(f"alpha must be in (0, 1), got {alpha!r}")
    prior = case.get("prior")
    if prior is not None:
        if not isinstance(prior, dict):
            raise CaseError("prior must be null or {'mean': float, 'stddev': float}")
        prior_mean = _number(prior.get("mean", 0.0), "prior.mean")
        prior_stddev = _number(prior.get("stddev"), "prior.stddev")
        if not prior_stddev > 0:
            raise CaseError(f"prior.stddev must be > 0, got {prior_stddev!r}")
        prior_type = prior.get("type", difference)
        if prior_type not in DIFFERENCES:
            raise CaseError(f"prior.type must be one of {DIFFERENCES}, got {prior_type!r}")
        prior = {"mean": prior_mean, "stddev": prior_stddev, "type": prior_type}
    theta = case.get("theta")
    if theta is not None and theta != "all_arms":
        theta = _number(theta, "theta")
    variants = case.get("variants")
    if not isinstance(variants, list) or len(variants) < 2:
        raise CaseError("variants must be a list of at least two arms (control first)")
    return {
        "kind": kind,
        "engine": engine,
        "difference": difference,
        "alpha": alpha,
        "one_sided": bool(case.get("one_sided", False)),
        "sequential": bool(case.get("sequential", False)),
        "sequential_tuning": _number(case.get("sequential_tuning", 5000), "sequential_tuning"),
        "prior": prior,
        "theta": theta,
        "variants": variants,
    }


def _make_test(settings: dict[str, Any], stat_a: Any, stat_b: Any) -> Any:
    """The gbstats test object for one control-vs-treatment comparison."""
    if settings["engine"] == "bayesian":
        from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior

        prior = settings["prior"]
        if prior is None:
            # proper=False: the prior is ignored (mean/variance only need to be non-zero-division-safe).
            gaussian = GaussianPrior(mean=0.0, variance=1.0, proper=False)
            prior_type = settings["difference"]
        else:
            gaussian = GaussianPrior(mean=prior["mean"], variance=prior["stddev"] ** 2, proper=True)
            prior_type = prior["type"]
        config = EffectBayesianConfig(
            difference_type=settings["difference"],
            alpha=settings["alpha"],
            prior_effect=gaussian,
            prior_type=prior_type,
        )
        return EffectBayesianABTest(stat_a, stat_b, config)

    from gbstats.frequentist.tests import (
        FrequentistConfig,
        OneSidedTreatmentGreaterTTest,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )

    if settings["sequential"]:
        if settings["one_sided"]:
            raise CaseError("gbstats 0.8.0 has no one-sided sequential test")
        sequential_config = SequentialConfig(
            difference_type=settings["difference"],
            alpha=settings["alpha"],
            sequential_tuning_parameter=settings["sequential_tuning"],
        )
        return SequentialTwoSidedTTest(stat_a, stat_b, sequential_config)
    config = FrequentistConfig(difference_type=settings["difference"], alpha=settings["alpha"])
    if settings["one_sided"]:
        return OneSidedTreatmentGreaterTTest(stat_a, stat_b, config)
    return TwoSidedTTest(stat_a, stat_b, config)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _failed_entry(message: str) -> dict[str, Any]:
    return {
        "effect": None,
        "se": None,
        "ci": None,
        "p_value": None,
        "chance_to_win": None,
        "risk": None,
        "theta": None,
        "error": message,
    }


def _compare(settings: dict[str, Any], treatment_index: int, forced_theta: float | None) -> dict[str, Any]:
    from gbstats.models.statistics import RegressionAdjustedStatistic

    kind, variants = settings["kind"], settings["variants"]
    stat_a = _statistic(kind, variants[0], 0)
    stat_b = _statistic(kind, variants[treatment_index], treatment_index)
    test = _make_test(settings, stat_a, stat_b)
    theta: float | None = None
    if kind == "cuped":
        if forced_theta is not None:
            # Replace gbstats' pairwise theta (BaseABTest.__init__) by the requested one, RA statistics kept.
            stat_a.theta = stat_b.theta = forced_theta
            test.stat_a, test.stat_b = stat_a, stat_b
        used = test.stat_a
        # Frequentist tests swap in post_statistic when compute_theta returns 0: theta used is then 0.
        theta = float(used.theta) if isinstance(used, RegressionAdjustedStatistic) else 0.0

    result = test.compute_result()
    bayesian = settings["engine"] == "bayesian"
    return {
        "effect": _float(result.expected),
        "se": _float(result.uplift.stddev),
        "ci": [_float(result.ci[0]), _float(result.ci[1])],
        "p_value": None if bayesian else _float(result.p_value),
        "chance_to_win": _float(result.chance_to_win) if bayesian else None,
        "risk": [_float(result.risk[0]), _float(result.risk[1])] if bayesian else None,
        "theta": theta,
        "error": result.error_message,
    }


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def analyze_case(case: Any) -> dict[str, Any]:
    """One case → {"variants": [one entry per treatment arm], "error": null | case-level message}."""
    try:
        settings = _settings(case)
    except Exception as error:  # the whole case is unusable
        variants = case.get("variants") if isinstance(case, dict) else None
        count = len(variants) - 1 if isinstance(variants, list) and len(variants) >= 2 else 0
        message = _describe(error)
        return {"variants": [_failed_entry(message) for _ in range(count)], "error": message}

    forced_theta: float | None = None
    if settings["kind"] == "cuped" and settings["theta"] is not None:
        try:
            if settings["theta"] == "all_arms":
                arms = [_statistic("cuped", v, i) for i, v in enumerate(settings["variants"])]
                forced_theta = _all_arms_theta(arms)
            else:
                forced_theta = settings["theta"]
        except Exception as error:
            message = _describe(error)
            return {"variants": [_failed_entry(message) for _ in settings["variants"][1:]], "error": message}

    entries = []
    for index in range(1, len(settings["variants"])):
        try:
            entries.append(_compare(settings, index, forced_theta))
        except Exception as error:  # one comparison failing leaves the others alone
            entries.append(_failed_entry(_describe(error)))
    return {"variants": entries, "error": None}


def _info() -> dict[str, str]:
    from importlib.metadata import version

    info = {"python": sys.version.split()[0]}
    for package in ("gbstats", "numpy", "scipy", "pandas", "pydantic"):
        info[package] = version(package)
    return info


def _warm_up(cases: list[Any]) -> None:
    """Import gbstats and analyse one case of each configuration untimed, so timings exclude first-call set-up."""
    import gbstats.bayesian.tests
    import gbstats.frequentist.tests
    import gbstats.models.statistics  # noqa: F401

    seen: set[str] = set()
    for case in cases:
        if isinstance(case, dict):
            fields = [case.get(k) for k in ("kind", "engine", "sequential", "one_sided")]
            key = repr([*fields, case.get("prior") is None])
            if key not in seen:
                seen.add(key)
                analyze_case(case)


def main() -> int:
    request = json.load(sys.stdin)
    mode = request.get("mode", "analyze")
    cases = request.get("cases", [])
    if mode == "info":
        output: dict[str, Any] = _info()
    elif mode == "analyze":
        output = {"results": [analyze_case(case) for case in cases]}
    elif mode == "time":
        repeat = int(request.get("repeat", 1))
        _warm_up(cases)
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            for case in cases:
                analyze_case(case)
            seconds.append(time.perf_counter() - start)
        output = {"seconds_per_repeat": seconds}
    else:
        print(f"unknown mode {mode!r}: expected 'analyze', 'time' or 'info'", file=sys.stderr)
        return 2
    # allow_nan: one-sided CIs end at ±Infinity; Python's json reads these back.
    json.dump(output, sys.stdout, allow_nan=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
