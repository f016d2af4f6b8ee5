"""One-sample intervals for dashboards and metric summaries: a rate or a mean with its uncertainty."""

from __future__ import annotations

import math

from scipy import special


def proportion_interval(successes: float, n: int, alpha: float = 0.05) -> tuple[float, float] | None:
    """Wilson score interval: well-behaved at 0% and 100%, where the normal interval collapses."""
    if n <= 0:
        return None
    z = float(special.ndtri(1 - alpha / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(
    n: int, total: float, total_squares: float, alpha: float = 0.05
) -> tuple[float, float] | None:
    """Student-t interval for a mean from n, Σx, Σx²; None when n ≤ 1."""
    if n <= 1:
        return None
    mean = total / n
    variance = max(total_squares - total * total / n, 0.0) / (n - 1)
    half = float(special.stdtrit(n - 1, 1 - alpha / 2)) * math.sqrt(variance / n)
    return mean - half, mean + half
