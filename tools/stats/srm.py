"""Sample-ratio mismatch: Pearson χ² goodness of fit of observed units against the configured weights.

A tiny p-value means assignment or tracking is broken, so every result of the experiment is suspect. Flagged at
p < 0.001 (the threshold GrowthBook, Statsig and Eppo use), which keeps false alarms rare over many checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

SRM_THRESHOLD = 0.001


def srm_p_value(observed_units: Sequence[float], weights: Sequence[float]) -> float:
    observed = np.asarray(observed_units, dtype=float)
    expected_share = np.asarray(weights, dtype=float)
    if observed.size != expected_share.size or observed.size < 2:
        raise ValueError("srm needs one weight per variant and at least two variants")
    total = observed.sum()
    if total <= 0:
        return 1.0
    expected = total * expected_share / expected_share.sum()
    used = expected > 0
    if np.any(observed[~used] > 0):
        return 0.0  # units in a variant configured to receive none: certain mismatch
    statistic = float(np.sum((observed[used] - expected[used]) ** 2 / expected[used]))
    return float(special.chdtrc(int(used.sum()) - 1, statistic))


def has_srm(p_value: float, threshold: float = SRM_THRESHOLD) -> bool:
    return p_value < threshold
