"""Analyse experiments: many metrics × variants at once, one vectorised pass per analysis setting.

`analyze_metrics` is the entry point the experiments service, the escalation rules, the retro agent and the
`feedbackloop stats analyze` door all use. Statistics that cannot be analysed come back with an explicit error
("cannot compute: …") and no numbers, never NaN.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tools.stats import cuped
from tools.stats import sequential as confidence_sequences
from tools.stats.bayesian import GaussianPrior, posterior
from tools.stats.corrections import Correction, adjust_p_values, interval_alpha
from tools.stats.effects import Difference, EffectArrays, PairArrays, effect_arrays
from tools.stats.frequentist import welch_test
from tools.stats.results import ArmSummary, EffectResult, MetricResult
from tools.stats.srm import has_srm, srm_p_value
from tools.stats.statistics import CupedStatistic, QuantileStatistic, Statistic

Engine = Literal["frequentist", "bayesian"]


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    engine: Engine = "frequentist"
    difference: Difference = "relative"
    alpha: float = 0.05
    sequential: bool = False
    sequential_tuning: float = confidence_sequences.DEFAULT_TUNING
    one_sided: bool = False
    prior: GaussianPrior | None = None
    lower_is_better: bool = False
    non_inferiority_margin: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if not self.sequential_tuning > 0:
            raise ValueError(f"sequential_tuning must be > 0, got {self.sequential_tuning}")
        if self.non_inferiority_margin is not None and not self.non_inferiority_margin >= 0:
            raise ValueError(f"non_inferiority_margin must be ≥ 0, got {self.non_inferiority_margin}")


@dataclass(frozen=True)
class MetricInput:
    """One metric of one experiment: arms[0] is control. `weights` (configured split) enables the SRM check."""

    name: str
    arms: Sequence[Statistic]
    arm_names: Sequence[str]
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if len(self.arms) < 2:
            raise ValueError(f"metric {self.name!r}: at least two arms (control and a treatment) are needed")
        if len(self.arm_names) != len(self.arms):
            raise ValueError(f"metric {self.name!r}: one name per arm is needed")
        if self.weights is not None and len(self.weights) != len(self.arms):
            raise ValueError(f"metric {self.name!r}: one weight per arm is needed")


@dataclass(frozen=True, slots=True)
class _Row:
    metric_index: int
    variant_index: int  # index into arms, ≥ 1
    control: Statistic
    treatment: Statistic


def compare(
    control: Statistic, treatments: Sequence[Statistic], settings: AnalysisSettings | None = None
) -> list[EffectResult]:
    """Each treatment against control with one setting; the convenience form of `analyze_metrics`."""
    names = ["control", *(f"variant_{i}" for i in range(1, len(treatments) + 1))]
    metric = MetricInput("metric", [control, *treatments], names, settings or AnalysisSettings())
    return list(analyze_metrics([metric])[0].variants)


def analyze_metrics(
    metrics: Sequence[MetricInput], correction: Correction | None = None
) -> list[MetricResult]:
    prepared = [_prepare(metric) for metric in metrics]
    rows_by_setting: dict[AnalysisSettings, list[_Row]] = defaultdict(list)
    for metric_index, arms in enumerate(prepared):
        for variant_index in range(1, len(arms)):
            row = _Row(metric_index, variant_index, arms[0], arms[variant_index])
            rows_by_setting[metrics[metric_index].settings].append(row)
    computed: dict[tuple[int, int], EffectResult] = {}
    corrected_rows: list[tuple[AnalysisSettings, list[_Row], EffectArrays]] = []
    for settings, rows in rows_by_setting.items():
        effects = effect_arrays(_pair_arrays(rows), settings.difference)
        corrected_rows.append((settings, rows, effects))
    alpha_for_intervals = _family_interval_alpha(corrected_rows, correction)
    for settings, rows, effects in corrected_rows:
        names = [metrics[row.metric_index].arm_names[row.variant_index] for row in rows]
        results = _evaluate(settings, rows, effects, names, alpha_for_intervals.get(settings))
        for row, result in zip(rows, results, strict=True):
            computed[(row.metric_index, row.variant_index)] = result
    if correction is not None:
        computed = _with_adjusted_p_values(computed, correction)
    return [_metric_result(metric, prepared[i], computed, i) for i, metric in enumerate(metrics)]


def _prepare(metric: MetricInput) -> list[Statistic]:
    arms = list(metric.arms)
    if all(isinstance(arm, CupedStatistic) for arm in arms):
        return list(cuped.adjust([arm for arm in arms if isinstance(arm, CupedStatistic)]))
    return arms


def _pair_arrays(rows: Sequence[_Row]) -> PairArrays:
    def column(values: list[float]) -> np.ndarray:
        return np.asarray(values, dtype=float)

    return PairArrays(
        mean_a=column([r.control.mean for r in rows]),
        mean_b=column([r.treatment.mean for r in rows]),
        est_var_a=column([r.control.estimate_variance for r in rows]),
        est_var_b=column([r.treatment.estimate_variance for r in rows]),
        n_a=column([r.control.n for r in rows]),
        n_b=column([r.treatment.n for r in rows]),
        denominator_a=column([r.control.unadjusted_mean for r in rows]),
        unadjusted_b=column([r.treatment.unadjusted_mean for r in rows]),
        normal_only=np.asarray(
            [
                isinstance(r.control, QuantileStatistic) or isinstance(r.treatment, QuantileStatistic)
                for r in rows
            ]
        ),
    )


def _row_problem(row: _Row, effects: EffectArrays, index: int) -> str | None:
    for role, statistic in (("control", row.control), ("variant", row.treatment)):
        problem = statistic.problem()
        if problem is not None:
            return f"cannot compute: {role} {problem}"
    return effects.error[index]


def _evaluate(
    settings: AnalysisSettings,
    rows: Sequence[_Row],
    effects: EffectArrays,
    names: Sequence[str],
    interval_alpha_override: float | None,
) -> list[EffectResult]:
    alpha = interval_alpha_override or settings.alpha
    n_total = np.asarray([r.control.n + r.treatment.n for r in rows], dtype=float)
    p_value: np.ndarray | None = None
    chance: np.ndarray | None = None
    risk: tuple[np.ndarray, np.ndarray] | None = None
    if settings.engine == "bayesian":
        post = posterior(
            effects.effect,
            effects.se,
            alpha=alpha,
            prior=settings.prior,
            lower_is_better=settings.lower_is_better,
        )
        point, spread, lower, upper = post.mean, post.sd, post.ci_lower, post.ci_upper
        chance, risk = post.chance_to_win, (post.risk_control, post.risk_variant)
    elif settings.sequential:
        point, spread = effects.effect, effects.se
        p_value, lower, upper = confidence_sequences.confidence_sequence(
            effects.effect,
            effects.se,
            n_total,
            alpha=alpha,
            tuning=settings.sequential_tuning,
            one_sided=settings.one_sided,
            lower_is_better=settings.lower_is_better,
        )
    else:
        point, spread = effects.effect, effects.se
        test = welch_test(
            effects.effect,
            effects.se,
            effects.df,
            alpha=alpha,
            one_sided=settings.one_sided,
            lower_is_better=settings.lower_is_better,
            non_inferiority_margin=settings.non_inferiority_margin,
        )
        p_value, lower, upper = test.p_value, test.ci_lower, test.ci_upper
    results = []
    for i, row in enumerate(rows):
        problem = _row_problem(row, effects, i)
        if problem is not None:
            results.append(EffectResult(names[i], row.treatment.n, row.treatment.mean, error=problem))
            continue
        results.append(
            EffectResult(
                name=names[i],
                n=row.treatment.n,
                mean=row.treatment.mean,
                effect=float(point[i]),
                se=float(spread[i]),  # the posterior sd for the Bayesian engine, as gbstats reports
                ci=(_bound(lower[i]), _bound(upper[i])),
                p_value=float(p_value[i]) if p_value is not None else None,
                chance_to_win=float(chance[i]) if chance is not None else None,
                risk=(float(risk[0][i]), float(risk[1][i])) if risk is not None else None,
            )
        )
    return results


def _bound(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _family_interval_alpha(
    groups: Sequence[tuple[AnalysisSettings, list[_Row], EffectArrays]], correction: Correction | None
) -> dict[AnalysisSettings, float]:
    """Intervals widened to match the correction, computed from the family's unadjusted p-values."""
    if correction is None:
        return {}
    preliminary: list[tuple[AnalysisSettings, float]] = []
    for settings, rows, effects in groups:
        if settings.engine != "frequentist":
            continue
        results = _evaluate(settings, rows, effects, ["_"] * len(rows), None)
        preliminary.extend((settings, r.p_value) for r in results if r.p_value is not None)
    if not preliminary:
        return {}
    p_values = np.asarray([p for _s, p in preliminary])
    return {s: interval_alpha(p_values, s.alpha, correction) for s in {s for s, _p in preliminary}}


def _with_adjusted_p_values(
    computed: dict[tuple[int, int], EffectResult], correction: Correction
) -> dict[tuple[int, int], EffectResult]:
    keys = [key for key, result in computed.items() if result.p_value is not None]
    if not keys:
        return computed
    adjusted = adjust_p_values(np.asarray([computed[k].p_value for k in keys], dtype=float), correction)
    updated = dict(computed)
    for key, p in zip(keys, adjusted, strict=True):
        result = computed[key]
        updated[key] = EffectResult(
            result.name, result.n, result.mean, result.effect, result.se, result.ci, float(p),
            result.chance_to_win, result.risk, result.error,
        )  # fmt: skip
    return updated


def _metric_result(
    metric: MetricInput, arms: Sequence[Statistic], computed: dict[tuple[int, int], EffectResult], index: int
) -> MetricResult:
    control = arms[0]
    srm_p = srm_p_value([arm.n for arm in arms], metric.weights) if metric.weights is not None else None
    return MetricResult(
        metric=metric.name,
        control=ArmSummary(metric.arm_names[0], control.n, control.mean if control.n else None),
        variants=tuple(computed[(index, v)] for v in range(1, len(arms))),
        srm_p_value=srm_p,
        srm=has_srm(srm_p) if srm_p is not None else False,
    )
