"""Effect of each treatment against control, as arrays: one numpy pass for any number of metric × variant pairs.

absolute: Δ = μ_B − μ_A, var = var(μ̂_B) + var(μ̂_A)
relative: Δ = (μ_B − μ_A)/|μ_A|, var = var(μ̂_B)/μ_A² + var(μ̂_A)·μ_B²/μ_A⁴   (delta method)
For CUPED the difference is of adjusted means while μ_A, μ_B in the denominators and the variance are the
unadjusted means (as gbstats does), so CUPED moves the variance and not the scale of the relative effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Difference = Literal["relative", "absolute"]


@dataclass(frozen=True)
class PairArrays:
    """Control (a) and treatment (b) columns for many pairs; `est_var` is the variance of each mean estimate."""

    mean_a: np.ndarray
    mean_b: np.ndarray
    est_var_a: np.ndarray
    est_var_b: np.ndarray
    n_a: np.ndarray
    n_b: np.ndarray
    denominator_a: np.ndarray  # control's unadjusted mean (== mean_a except for CUPED)
    unadjusted_b: np.ndarray  # treatment's unadjusted mean (== mean_b except for CUPED)
    normal_only: np.ndarray  # True where the t distribution does not apply (quantiles): use the normal

    @property
    def size(self) -> int:
        return int(self.mean_a.size)


@dataclass(frozen=True)
class EffectArrays:
    effect: np.ndarray
    se: np.ndarray
    df: np.ndarray  # Welch–Satterthwaite degrees of freedom; inf where the normal applies
    error: list[str | None]


def effect_arrays(pairs: PairArrays, difference: Difference) -> EffectArrays:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if difference == "absolute":
            effect = pairs.mean_b - pairs.mean_a
            variance = pairs.est_var_a + pairs.est_var_b
        else:
            denominator = np.abs(pairs.denominator_a)
            effect = (pairs.mean_b - pairs.mean_a) / denominator
            variance = (
                pairs.est_var_b / denominator**2 + pairs.est_var_a * pairs.unadjusted_b**2 / denominator**4
            )
        se = np.sqrt(variance)
        df = welch_degrees_of_freedom(pairs)
    errors: list[str | None] = [None] * pairs.size
    for index in range(pairs.size):
        if difference == "relative" and pairs.denominator_a[index] == 0:
            errors[index] = "cannot compute: control mean is 0, so a relative effect is undefined"
        elif not se[index] > 0:
            errors[index] = "cannot compute: zero variance in both arms"
        elif not (np.isfinite(effect[index]) and np.isfinite(se[index])):
            errors[index] = "cannot compute: effect is not finite"
    return EffectArrays(effect=effect, se=se, df=df, error=errors)


def welch_degrees_of_freedom(pairs: PairArrays) -> np.ndarray:
    """(v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1)) with v the estimate variances; inf for normal-only pairs."""
    with np.errstate(divide="ignore", invalid="ignore"):
        va, vb = pairs.est_var_a, pairs.est_var_b
        df = (va + vb) ** 2 / (va**2 / (pairs.n_a - 1) + vb**2 / (pairs.n_b - 1))
    df = np.where(pairs.normal_only, np.inf, df)
    # One arm with zero variance leaves the other's n − 1; both zero is reported as an error upstream.
    return np.where(np.isfinite(df) | pairs.normal_only, df, np.inf)
