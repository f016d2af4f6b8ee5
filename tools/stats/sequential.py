"""Always-valid inference: asymptotic confidence sequences (Howard et al. 2021; Waudby-Smith et al. 2023).

The interval may be looked at after every new user without inflating the false-positive rate. N* (the tuning
parameter) is the total sample size at which the sequence is tightest; GrowthBook's default is 5000.

    ρ = √((−2·ln α + ln(−2·ln α + 1)) / N*)
    half-width = √(s²) · √( 2(n·ρ² + 1) / (n²·ρ²) · ln(√(n·ρ² + 1) / α) )

with n the total units of both arms and s² = n · var(Δ̂), the per-unit variance of the effect.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TUNING = 5000.0
_P_VALUE_BISECTION_STEPS = 60


def rho(alpha: float | np.ndarray, tuning: float) -> np.ndarray:
    alpha = np.asarray(alpha, dtype=float)
    return np.sqrt((-2.0 * np.log(alpha) + np.log(-2.0 * np.log(alpha) + 1.0)) / tuning)


def half_width(
    se: np.ndarray, n_total: np.ndarray, *, alpha: float | np.ndarray, tuning: float
) -> np.ndarray:
    r2 = rho(alpha, tuning) ** 2
    s2 = se**2 * n_total
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.sqrt(s2) * np.sqrt(
            2.0 * (n_total * r2 + 1.0) / (n_total**2 * r2) * np.log(np.sqrt(n_total * r2 + 1.0) / alpha)
        )
    return width


def always_valid_p_value(
    effect: np.ndarray, se: np.ndarray, n_total: np.ndarray, *, tuning: float
) -> np.ndarray:
    """The smallest α whose confidence sequence excludes 0 (bisection on log α, vectorised)."""
    low = np.full_like(effect, np.log(1e-300), dtype=float)  # excludes 0 at this α? then p ≤ this
    high = np.zeros_like(
        effect, dtype=float
    )  # α = 1: the sequence is a single point, excludes 0 unless Δ = 0
    distance = np.abs(effect)
    for _ in range(_P_VALUE_BISECTION_STEPS):
        middle = (low + high) / 2
        excludes = half_width(se, n_total, alpha=np.exp(middle), tuning=tuning) < distance
        high = np.where(excludes, middle, high)
        low = np.where(excludes, low, middle)
    return np.clip(np.exp(high), 0.0, 1.0)


def confidence_sequence(
    effect: np.ndarray,
    se: np.ndarray,
    n_total: np.ndarray,
    *,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
    one_sided: bool = False,
    lower_is_better: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_value, lower, upper). One-sided: the bound on the side of interest of the sequence at level 2α."""
    level = 2 * alpha if one_sided else alpha
    width = half_width(se, n_total, alpha=level, tuning=tuning)
    p_value = always_valid_p_value(effect, se, n_total, tuning=tuning)
    if not one_sided:
        return p_value, effect - width, effect + width
    # One-sided: half the two-sided always-valid p-value when the effect points the hoped-for way.
    favourable = effect < 0 if lower_is_better else effect > 0
    one_sided_p = np.where(favourable, p_value / 2, 1 - p_value / 2)
    infinite = np.full_like(effect, np.inf, dtype=float)
    if lower_is_better:
        return one_sided_p, -infinite, effect + width
    return one_sided_p, effect - width, infinite
