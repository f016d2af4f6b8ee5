"""CUPED: θ = cov(y, x) / var(x) estimated once on all arms pooled, then each arm adjusted with that θ.

Pooling keeps θ identical across arms, which keeps the adjusted difference unbiased; θ = 0 (no covariate signal,
or a constant covariate) falls back to the unadjusted analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tools.stats.statistics import CupedStatistic


def pooled_theta(arms: Sequence[CupedStatistic]) -> float:
    n = sum(arm.n for arm in arms)
    if n <= 1:
        return 0.0
    sum_y = sum(arm.sum for arm in arms)
    sum_x = sum(arm.covariate_sum for arm in arms)
    var_x = (sum(arm.covariate_sum_squares for arm in arms) - sum_x**2 / n) / (n - 1)
    cov_xy = (sum(arm.main_covariate_sum_product for arm in arms) - sum_x * sum_y / n) / (n - 1)
    if var_x <= 0:
        return 0.0
    return cov_xy / var_x


def adjust(arms: Sequence[CupedStatistic]) -> list[CupedStatistic]:
    """The same arms with the pooled θ set."""
    theta = pooled_theta(arms)
    return [replace(arm, theta=theta) for arm in arms]
