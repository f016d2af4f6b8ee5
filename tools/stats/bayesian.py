"""Bayesian effect analysis with a normal prior on the effect (flat by default), as GrowthBook's engine does.

posterior precision = 1/var(Δ̂) + 1/σ₀²;  posterior mean = (Δ̂/var(Δ̂) + μ₀/σ₀²) / precision
chance to win = P(Δ > 0)  (P(Δ < 0) when lower is better)
risk = expected loss of each choice: control → E[max(Δ, 0)], variant → E[max(−Δ, 0)]  (signs flipped when lower
is better), from truncated-normal means: E[max(Δ,0)] = μΦ(μ/σ) + σφ(μ/σ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """N(mean, stddev²) on the effect, in the units of the analysis (relative or absolute)."""

    mean: float = 0.0
    stddev: float = 0.3

    def __post_init__(self) -> None:
        if not (np.isfinite(self.mean) and np.isfinite(self.stddev) and self.stddev > 0):
            raise ValueError(f"prior needs a finite mean and a stddev > 0, got {self.mean}, {self.stddev}")


@dataclass(frozen=True)
class PosteriorArrays:
    mean: np.ndarray
    sd: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    chance_to_win: np.ndarray
    risk_control: np.ndarray
    risk_variant: np.ndarray


def posterior(
    effect: np.ndarray,
    se: np.ndarray,
    *,
    alpha: float,
    prior: GaussianPrior | None,
    lower_is_better: bool = False,
) -> PosteriorArrays:
    with np.errstate(divide="ignore", invalid="ignore"):
        if prior is None:
            mean, variance = effect, se**2
        else:
            precision = 1.0 / se**2 + 1.0 / prior.stddev**2
            mean = (effect / se**2 + prior.mean / prior.stddev**2) / precision
            variance = 1.0 / precision
        sd = np.sqrt(variance)
        z = special.ndtri(1 - alpha / 2)
        gain = -mean if lower_is_better else mean  # the improvement, positive when the variant is better
        standardised = gain / sd
        chance_to_win = special.ndtr(standardised)
        density = np.exp(-0.5 * standardised**2) / _SQRT_2PI
        risk_control = gain * special.ndtr(standardised) + sd * density
        risk_variant = -gain * special.ndtr(-standardised) + sd * density
    return PosteriorArrays(
        mean=mean,
        sd=sd,
        ci_lower=mean - z * sd,
        ci_upper=mean + z * sd,
        chance_to_win=chance_to_win,
        risk_control=np.maximum(risk_control, 0.0),
        risk_variant=np.maximum(risk_variant, 0.0),
    )
