"""Sufficient statistics: what the SQL layer aggregates per variant, and what each one knows about itself.

Every statistic exposes `mean` (the point estimate), `variance` (per-unit variance) and `estimate_variance`
(variance of the estimate itself, usually variance / n), plus `problem()`: None, or the reason it cannot be
analysed. Nothing here returns NaN; callers check `problem()` first.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

# Relative tolerance for "sum_squares is consistent with sum": floating sums from SQL may be off in the last digits.
CONSISTENCY_TOLERANCE = 1e-9


class StatisticInputError(ValueError):
    """A sufficient statistic is impossible (negative n, sum_squares < sum²/n, …); `field` names the bad input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _require_count(n: float, field: str = "n") -> None:
    if not math.isfinite(n) or n < 0 or n != int(n):
        raise StatisticInputError(field, f"must be a whole number ≥ 0, got {n!r}")


def _require_finite(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise StatisticInputError(field, f"must be a finite number, got {value!r}")


def _sample_variance(n: float, total: float, total_squares: float, field: str = "sum_squares") -> float:
    """(Σx² − (Σx)²/n) / (n − 1); refuses sums that no real data could produce."""
    if n <= 1:
        return 0.0
    centred = total_squares - total * total / n
    if centred < -CONSISTENCY_TOLERANCE * max(abs(total_squares), 1.0):
        raise StatisticInputError(
            field, f"{total_squares!r} is smaller than sum²/n = {total * total / n!r}; no data has these sums"
        )
    return max(centred, 0.0) / (n - 1)


def _sample_covariance(n: float, sum_x: float, sum_y: float, sum_xy: float) -> float:
    if n <= 1:
        return 0.0
    return (sum_xy - sum_x * sum_y / n) / (n - 1)


class _PerUnitEstimate(ABC):
    """Shared by statistics whose estimate is a per-unit average: var(estimate) = variance / n."""

    __slots__ = ()
    n: int

    @property
    @abstractmethod
    def mean(self) -> float: ...

    @property
    @abstractmethod
    def variance(self) -> float: ...

    @property
    def estimate_variance(self) -> float:
        return self.variance / self.n if self.n else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    def problem(self) -> str | None:
        if self.n <= 1:
            return f"n = {self.n} ≤ 1"
        return None


@dataclass(frozen=True, slots=True)
class MeanStatistic(_PerUnitEstimate):
    """A per-unit numeric metric (revenue per user, minutes to value): n, Σx, Σx²."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        _require_count(self.n)
        _require_finite(self.sum, "sum")
        _require_finite(self.sum_squares, "sum_squares")
        if self.sum_squares < 0:
            raise StatisticInputError("sum_squares", f"must be ≥ 0, got {self.sum_squares!r}")
        _sample_variance(self.n, self.sum, self.sum_squares)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        return _sample_variance(self.n, self.sum, self.sum_squares)

    @classmethod
    def from_values(cls, values: np.ndarray | list[float]) -> MeanStatistic:
        array = np.asarray(values, dtype=float)
        return cls(n=int(array.size), sum=float(array.sum()), sum_squares=float(np.square(array).sum()))


@dataclass(frozen=True, slots=True)
class BinomialStatistic(_PerUnitEstimate):
    """A conversion metric: n units, `sum` of them converted. Variance p(1 − p)."""

    n: int
    sum: float

    def __post_init__(self) -> None:
        _require_count(self.n)
        _require_finite(self.sum, "sum")
        if not 0 <= self.sum <= self.n:
            raise StatisticInputError(
                "sum", f"conversions must be between 0 and n = {self.n}, got {self.sum!r}"
            )

    @property
    def sum_squares(self) -> float:
        return self.sum  # x ∈ {0, 1}, so Σx² = Σx

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1.0 - p)


@dataclass(frozen=True, slots=True)
class RatioStatistic(_PerUnitEstimate):
    """A ratio of two per-unit sums (errors per session, revenue per order), analysed with the delta method.

    var = var_m/μ_d² + var_d·μ_m²/μ_d⁴ − 2·cov_md·μ_m/μ_d³ (per unit; divide by n for the estimate).
    """

    n: int
    sum: float
    sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    main_denominator_sum_product: float

    def __post_init__(self) -> None:
        _require_count(self.n)
        for name in ("sum", "sum_squares", "denominator_sum", "denominator_sum_squares"):
            _require_finite(getattr(self, name), name)
        _require_finite(self.main_denominator_sum_product, "main_denominator_sum_product")
        _sample_variance(self.n, self.sum, self.sum_squares)
        _sample_variance(
            self.n, self.denominator_sum, self.denominator_sum_squares, "denominator_sum_squares"
        )

    @property
    def mean(self) -> float:
        return self.sum / self.denominator_sum if self.denominator_sum else 0.0

    @property
    def variance(self) -> float:
        if self.n <= 1 or self.denominator_sum == 0:
            return 0.0
        mean_m, mean_d = self.sum / self.n, self.denominator_sum / self.n
        var_m = _sample_variance(self.n, self.sum, self.sum_squares)
        var_d = _sample_variance(self.n, self.denominator_sum, self.denominator_sum_squares)
        cov = _sample_covariance(self.n, self.sum, self.denominator_sum, self.main_denominator_sum_product)
        value = var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2 * cov * mean_m / mean_d**3
        return max(value, 0.0)

    def problem(self) -> str | None:
        if self.n <= 1:
            return f"n = {self.n} ≤ 1"
        if self.denominator_sum == 0:
            return "denominator sum is 0"
        return None


@dataclass(frozen=True, slots=True)
class CupedStatistic(_PerUnitEstimate):
    """A mean metric with a pre-period covariate, for CUPED. θ is set by `tools.stats.cuped` (pooled over arms).

    Adjusted mean ȳ − θ·x̄; adjusted variance var_y + θ²·var_x − 2θ·cov_xy.
    """

    n: int
    sum: float
    sum_squares: float
    covariate_sum: float
    covariate_sum_squares: float
    main_covariate_sum_product: float
    theta: float = 0.0

    def __post_init__(self) -> None:
        _require_count(self.n)
        for name in (
            "sum",
            "sum_squares",
            "covariate_sum",
            "covariate_sum_squares",
            "main_covariate_sum_product",
        ):
            _require_finite(getattr(self, name), name)
        _require_finite(self.theta, "theta")
        _sample_variance(self.n, self.sum, self.sum_squares)
        _sample_variance(self.n, self.covariate_sum, self.covariate_sum_squares, "covariate_sum_squares")

    @property
    def unadjusted_mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def covariate_mean(self) -> float:
        return self.covariate_sum / self.n if self.n else 0.0

    @property
    def mean(self) -> float:
        return self.unadjusted_mean - self.theta * self.covariate_mean

    @property
    def variance(self) -> float:
        var_y = _sample_variance(self.n, self.sum, self.sum_squares)
        var_x = _sample_variance(self.n, self.covariate_sum, self.covariate_sum_squares)
        cov = _sample_covariance(self.n, self.sum, self.covariate_sum, self.main_covariate_sum_product)
        return max(var_y + self.theta**2 * var_x - 2 * self.theta * cov, 0.0)

    def problem(self) -> str | None:
        if self.n <= 1:
            return f"n = {self.n} ≤ 1"
        return None


@dataclass(frozen=True, slots=True)
class QuantileStatistic:
    """A quantile (p50/p90 time-to-value) with its variance from order statistics (Deng, Knoblich & Yu 2018).

    The SQL layer supplies the sample quantile and the two order statistics at the ranks `quantile_rank_bounds`
    returns; they bracket a (1 − α) confidence interval for the true quantile, so its standard error is
    (upper − lower) / (2·z). Needs no distributional assumption and no raw values in Python.
    """

    n: int
    quantile: float
    estimate: float
    lower_order_statistic: float
    upper_order_statistic: float
    z: float = 1.959963984540054

    def __post_init__(self) -> None:
        _require_count(self.n)
        if not 0 < self.quantile < 1:
            raise StatisticInputError("quantile", f"must be between 0 and 1, got {self.quantile!r}")
        for name in ("estimate", "lower_order_statistic", "upper_order_statistic", "z"):
            _require_finite(getattr(self, name), name)
        if not self.lower_order_statistic <= self.estimate <= self.upper_order_statistic:
            raise StatisticInputError(
                "estimate", "must lie between lower_order_statistic and upper_order_statistic"
            )

    @property
    def mean(self) -> float:
        return self.estimate

    @property
    def unadjusted_mean(self) -> float:
        return self.estimate

    @property
    def estimate_variance(self) -> float:
        return ((self.upper_order_statistic - self.lower_order_statistic) / (2 * self.z)) ** 2

    @property
    def variance(self) -> float:
        return self.estimate_variance * self.n

    def problem(self) -> str | None:
        if self.n <= 1:
            return f"n = {self.n} ≤ 1"
        return None


def quantile_rank_bounds(n: int, quantile: float, z: float = 1.959963984540054) -> tuple[int, int]:
    """1-based ranks of the order statistics that bracket the quantile: n·p ∓ z·√(n·p·(1−p)), clipped to [1, n]."""
    spread = z * math.sqrt(n * quantile * (1 - quantile))
    lower = max(1, math.floor(n * quantile - spread))
    upper = min(n, math.ceil(n * quantile + spread))
    return lower, upper


Statistic = MeanStatistic | BinomialStatistic | RatioStatistic | CupedStatistic | QuantileStatistic
