"""Pure statistics on sufficient statistics (numpy and scipy only; imports nothing else of ours; no I/O).

Conventions follow GrowthBook's gbstats, Statsig and Eppo (see docs/statistics.md): Welch t-tests with
delta-method relative effects, always-valid confidence sequences, a normal-prior Bayesian engine, CUPED with θ
pooled across arms, ratio metrics by the delta method, χ² SRM checks, Holm/BH corrections, and power.
"""

from tools.stats.analysis import AnalysisSettings, MetricInput, analyze_metrics, compare
from tools.stats.bayesian import GaussianPrior
from tools.stats.results import ArmSummary, EffectResult, MetricResult
from tools.stats.srm import SRM_THRESHOLD, srm_p_value
from tools.stats.statistics import (
    BinomialStatistic,
    CupedStatistic,
    MeanStatistic,
    QuantileStatistic,
    RatioStatistic,
    Statistic,
    StatisticInputError,
    quantile_rank_bounds,
)

__all__ = [
    "SRM_THRESHOLD",
    "AnalysisSettings",
    "ArmSummary",
    "BinomialStatistic",
    "CupedStatistic",
    "EffectResult",
    "GaussianPrior",
    "MeanStatistic",
    "MetricInput",
    "MetricResult",
    "QuantileStatistic",
    "RatioStatistic",
    "Statistic",
    "StatisticInputError",
    "analyze_metrics",
    "compare",
    "quantile_rank_bounds",
    "srm_p_value",
]
