"""Winsorisation: cap heavy-tailed values (revenue, durations) at a percentile before aggregating.

One whale can swing a revenue mean more than any treatment; capping at e.g. the 99th percentile keeps the metric
about typical users. Callers compute the caps on the pooled data of all arms (so every arm is capped alike) and
apply them in SQL (LEAST/GREATEST or CASE) or with `winsorize` on values already in memory.
"""

from __future__ import annotations

import numpy as np


def caps(
    values: np.ndarray, *, upper_percentile: float = 99.0, lower_percentile: float | None = None
) -> tuple[float | None, float]:
    """(lower cap or None, upper cap) at the given percentiles (0–100) of the pooled values."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("winsorisation caps need at least one value")
    if not 0 < upper_percentile <= 100 or (lower_percentile is not None and not 0 <= lower_percentile < 100):
        raise ValueError("percentiles must be within 0–100 (upper > 0, lower < 100)")
    upper = float(np.percentile(array, upper_percentile))
    lower = float(np.percentile(array, lower_percentile)) if lower_percentile is not None else None
    return lower, upper


def winsorize(values: np.ndarray, *, upper_cap: float, lower_cap: float | None = None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return np.clip(array, lower_cap if lower_cap is not None else -np.inf, upper_cap)
