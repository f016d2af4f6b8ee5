"""Power: sample size for a minimum detectable effect, the MDE for a sample size, and how long is left.

Fixed horizon, two arms of equal size, per-unit variances σ_A² and σ_B²:
    n per arm = (z_{1−α/2} + z_{power})² · (σ_A² + σ_B²) / δ²      (z_{1−α} when one-sided)
δ is the absolute effect; a relative MDE is δ/|μ_A|. With `sequential_tuning` set, the size is the one at which
the always-valid interval (tools.stats.sequential) clears δ with the requested power — what an experiment that
is peeked at needs, and what fixed-horizon calculators understate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from tools.stats import sequential

_MAX_UNITS_PER_ARM = 1e13


class PowerInputError(ValueError):
    """An input to a power calculation is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class PowerPlan:
    n_per_arm: int
    total_units: int
    days: int | None  # None when daily traffic is not given


@dataclass(frozen=True, slots=True)
class RemainingToPower:
    """Mid-experiment guidance: how many more units (and days at current traffic) until the MDE is detectable."""

    n_per_arm_needed: int
    n_per_arm_now: int
    more_units_per_arm: int
    more_days: int | None
    reached: bool


def _z(alpha: float, power: float, one_sided: bool) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise PowerInputError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < power < 1:
        raise PowerInputError(f"power must be between 0 and 1, got {power}")
    z_alpha = float(special.ndtri(1 - alpha)) if one_sided else float(special.ndtri(1 - alpha / 2))
    return z_alpha, float(special.ndtri(power))


def _absolute_effect(mde: float, baseline_mean: float, relative: bool) -> float:
    if not mde > 0:
        raise PowerInputError(f"mde must be > 0, got {mde}")
    if relative:
        if baseline_mean == 0:
            raise PowerInputError("baseline_mean is 0: a relative MDE is undefined; use an absolute one")
        return mde * abs(baseline_mean)
    return mde


def _variance_sum(variance_control: float, variance_treatment: float | None) -> float:
    if not variance_control > 0:
        raise PowerInputError(f"variance_control must be > 0, got {variance_control}")
    if variance_treatment is not None and not variance_treatment > 0:
        raise PowerInputError(f"variance_treatment must be > 0, got {variance_treatment}")
    return variance_control + (variance_treatment if variance_treatment is not None else variance_control)


def binomial_variances(baseline_rate: float, mde: float, relative: bool = True) -> tuple[float, float]:
    """σ_A², σ_B² of a conversion rate and of the rate the MDE would produce."""
    if not 0 < baseline_rate < 1:
        raise PowerInputError(f"baseline_rate must be between 0 and 1, got {baseline_rate}")
    treated = baseline_rate * (1 + mde) if relative else baseline_rate + mde
    treated = min(max(treated, 0.0), 1.0)
    return baseline_rate * (1 - baseline_rate), treated * (1 - treated)


def sample_size_per_arm(
    mde: float,
    *,
    baseline_mean: float,
    variance_control: float,
    variance_treatment: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = True,
    one_sided: bool = False,
    sequential_tuning: float | None = None,
) -> int:
    if not variance_control > 0:
        raise PowerInputError(f"variance_control must be > 0, got {variance_control}")
    variance_sum = variance_control + (
        variance_treatment if variance_treatment is not None else variance_control
    )
    delta = _absolute_effect(mde, baseline_mean, relative)
    z_alpha, z_power = _z(alpha, power, one_sided)
    fixed = (z_alpha + z_power) ** 2 * variance_sum / delta**2
    if sequential_tuning is None:
        return max(2, math.ceil(fixed))
    return _sequential_size(delta, variance_sum, alpha, z_power, sequential_tuning, one_sided, start=fixed)


def _sequential_size(
    delta: float,
    variance_sum: float,
    alpha: float,
    z_power: float,
    tuning: float,
    one_sided: bool,
    start: float,
) -> int:
    import numpy as np

    def clears(n: float) -> bool:
        se = math.sqrt(variance_sum / n)
        level = 2 * alpha if one_sided else alpha
        width = float(sequential.half_width(np.array([se]), np.array([2 * n]), alpha=level, tuning=tuning)[0])
        return width + z_power * se <= delta

    low, high = max(start, 2.0), max(start, 2.0)
    while not clears(high):
        high *= 2
        if high > _MAX_UNITS_PER_ARM:
            raise PowerInputError("the MDE is too small to detect with any realistic sample")
    while high - low > 1:
        middle = (low + high) / 2
        low, high = (low, middle) if clears(middle) else (middle, high)
    return math.ceil(high)


def minimum_detectable_effect(
    n_per_arm: int,
    *,
    baseline_mean: float,
    variance_control: float,
    variance_treatment: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = True,
    one_sided: bool = False,
) -> float:
    if n_per_arm < 2:
        raise PowerInputError(f"n_per_arm must be ≥ 2, got {n_per_arm}")
    variance_sum = variance_control + (
        variance_treatment if variance_treatment is not None else variance_control
    )
    z_alpha, z_power = _z(alpha, power, one_sided)
    delta = (z_alpha + z_power) * math.sqrt(variance_sum / n_per_arm)
    if relative:
        if baseline_mean == 0:
            raise PowerInputError("baseline_mean is 0: a relative MDE is undefined")
        return delta / abs(baseline_mean)
    return delta


def days_for(total_units: int, daily_units: float, coverage: float = 1.0) -> int:
    if not daily_units > 0:
        raise PowerInputError(f"daily_units must be > 0, got {daily_units}")
    if not 0 < coverage <= 1:
        raise PowerInputError(f"coverage must be in (0, 1], got {coverage}")
    return math.ceil(total_units / (daily_units * coverage))


def plan(
    n_per_arm: int, *, arms: int = 2, daily_units: float | None = None, coverage: float = 1.0
) -> PowerPlan:
    total = n_per_arm * arms
    return PowerPlan(n_per_arm, total, days_for(total, daily_units, coverage) if daily_units else None)


def remaining_to_power(
    n_per_arm_needed: int, n_per_arm_now: int, *, arms: int = 2, daily_units: float | None = None
) -> RemainingToPower:
    """How far an experiment is from its planned power; `daily_units` is the current total traffic per day."""
    more = max(0, n_per_arm_needed - n_per_arm_now)
    days = days_for(more * arms, daily_units) if daily_units and more else (0 if daily_units else None)
    return RemainingToPower(n_per_arm_needed, n_per_arm_now, more, days, reached=more == 0)
