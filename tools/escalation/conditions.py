"""Judge one rule for one persona: does the condition hold, has a firing escalation recovered, on what evidence.

`triggered` uses the rule's threshold, `recovered` its recovery threshold (hysteresis); both are None when there
is too little data (below min_sample, or no value): an instance without data is `no_data`, never healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.escalation.measure import Measurement
from tools.escalation.model import EscalationRule
from tools.stats.analysis import AnalysisSettings, compare


@dataclass(frozen=True, slots=True)
class Judgement:
    triggered: bool | None
    recovered: bool | None
    value: float | None
    baseline: float | None
    change: float | None  # relative change vs the baseline (−0.3 = −30 %)
    p_value: float | None
    n: int
    baseline_n: int | None
    reason: str | None = None  # why there is no judgement (no_data)

    @property
    def no_data(self) -> bool:
        return self.triggered is None


def _no_data(current: Measurement, baseline: Measurement | None, reason: str) -> Judgement:
    return Judgement(
        None, None, current.value, baseline.value if baseline else None, None, None, current.n,
        baseline.n if baseline else None, reason,
    )  # fmt: skip


def judge(rule: EscalationRule, current: Measurement, baseline: Measurement | None) -> Judgement:
    if current.value is None:
        return _no_data(current, baseline, current.reason or "no value in the period")
    if current.n < rule.min_sample:
        return _no_data(current, baseline, f"n = {current.n} is below min_sample {rule.min_sample}")
    if rule.comparison in ("less_than", "greater_than"):
        return _absolute(rule, current, baseline)
    if baseline is None or baseline.value is None:
        return _no_data(current, baseline, "no baseline value")
    if baseline.n < rule.min_sample:
        return _no_data(current, baseline, f"baseline n = {baseline.n} is below min_sample {rule.min_sample}")
    if baseline.value == 0:
        return _no_data(current, baseline, "the baseline is 0, so a percentage change is undefined")
    return _relative(rule, current, baseline)


def _absolute(rule: EscalationRule, current: Measurement, baseline: Measurement | None) -> Judgement:
    assert current.value is not None
    value, threshold = current.value, rule.threshold
    recovery = rule.recovery_threshold if rule.recovery_threshold is not None else threshold
    if rule.comparison == "less_than":
        triggered, recovered = value < threshold, value >= recovery
    else:
        triggered, recovered = value > threshold, value <= recovery
    base = baseline.value if baseline is not None else None
    change = (value - base) / abs(base) if base else None  # as in _relative: NPS baselines can be negative
    return Judgement(
        triggered, recovered, value, base, change, None, current.n, baseline.n if baseline else None
    )


def _relative(rule: EscalationRule, current: Measurement, baseline: Measurement) -> Judgement:
    assert current.value is not None and baseline.value is not None
    change = (current.value - baseline.value) / abs(baseline.value)
    worse_pct = 100 * (
        -change if rule.comparison in ("drop_pct_greater_than", "significant_drop") else change
    )
    recovery = rule.recovery_threshold if rule.recovery_threshold is not None else rule.threshold
    p_value = _p_value(current, baseline, rule.alpha)
    if rule.comparison.startswith("significant_"):
        significant = p_value is not None and p_value < rule.alpha
        triggered = significant and worse_pct >= rule.threshold
        # Recovery is the effect falling below the recovery point. A week that is merely not significant (small,
        # noisy) is no evidence of recovery, and counting it as one made firing escalations flap on low volume.
        recovered = worse_pct < recovery
    else:
        triggered, recovered = worse_pct > rule.threshold, worse_pct <= recovery
    return Judgement(
        triggered, recovered, current.value, baseline.value, change, p_value, current.n, baseline.n
    )


def _p_value(current: Measurement, baseline: Measurement, alpha: float) -> float | None:
    """Two-sided Welch test of the period against its baseline, on absolute differences (a 0 mean is fine)."""
    if current.statistic is None or baseline.statistic is None:
        return None
    settings = AnalysisSettings(difference="absolute", alpha=min(max(alpha, 1e-9), 0.5))
    return compare(baseline.statistic, [current.statistic], settings)[0].p_value
