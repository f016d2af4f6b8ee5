"""Multiple-testing corrections across goal metrics × variants, with matching interval levels.

Holm–Bonferroni controls the family-wise error rate; its intervals use the Bonferroni level α/m (Holm has no
exact interval counterpart; α/m is the valid conservative choice). Benjamini–Hochberg controls the false
discovery rate; its intervals are the FCR-adjusted ones of Benjamini & Yekutieli (2005): level α·R/m, with R the
number of discoveries (at least 1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Correction = Literal["holm", "bh"]


def holm(p_values: np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return adjusted


def adjust_p_values(p_values: np.ndarray, method: Correction) -> np.ndarray:
    return holm(p_values) if method == "holm" else benjamini_hochberg(p_values)


def interval_alpha(p_values: np.ndarray, alpha: float, method: Correction) -> float:
    """The per-interval α that matches the correction (see module docstring)."""
    m = int(np.asarray(p_values).size)
    if m <= 1:
        return alpha
    if method == "holm":
        return alpha / m
    discoveries = int(np.sum(benjamini_hochberg(p_values) < alpha))
    return alpha * max(discoveries, 1) / m
