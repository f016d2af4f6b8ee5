"""Statistics on KPI values: change vs the previous window, and persona rankings with significance.

Only KPIs that are proportions (numerator/denominator) or per-unit means (with Σx²) can be tested; derived KPIs
(LTV, CAC, NRR …) are shown without a verdict rather than with a made-up one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.kpis.definitions import KPI_DEFINITIONS, KPIS_BY_NAME
from tools.kpis.model import KpiCategory, KpiSnapshot, KpiValue
from tools.stats import AnalysisSettings, BinomialStatistic, MeanStatistic, Statistic, compare
from tools.stats.corrections import holm

ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class KpiChange:
    name: str
    current: KpiValue
    previous: KpiValue | None
    change: float | None  # relative (0.1 = +10%)
    p_value: float | None
    significant: bool
    improved: bool | None


@dataclass(frozen=True, slots=True)
class PersonaRank:
    persona: str
    value: float | None
    n: int


@dataclass(frozen=True, slots=True)
class PersonaRanking:
    """Personas ranked best first for one KPI; `leader` only when best vs worst differ significantly (Holm)."""

    kpi: str
    ranking: tuple[PersonaRank, ...]
    leader: str | None
    p_value: float | None  # best vs worst, Holm-adjusted across the KPIs compared
    significant: bool
    note: str | None = None


# KPIs whose value is a median: their sums describe the mean, so a t-test would judge a different figure than
# the one shown. They get no verdict rather than a misleading one.
MEDIAN_KPIS = frozenset({"support_resolution_time", "time_to_value_minutes"})
# Cohort KPIs that keep maturing after the window: the latest window's signups have had less time to convert
# than the previous window's, so a window-over-window test would flag that as a decline.
MATURING_KPIS = frozenset({"conversion_rate"})


def _statistic(value: KpiValue) -> Statistic | None:
    definition = KPIS_BY_NAME.get(value.name)
    if definition is None or value.value is None or value.numerator is None:
        return None
    if value.name in MEDIAN_KPIS:
        return None
    n = int(value.denominator if value.denominator is not None else value.n)
    if n <= 1:
        return None
    if definition.kind == "proportion" and 0 <= value.numerator <= n:
        return BinomialStatistic(n, value.numerator)
    if definition.kind == "per_unit" and value.sum_squares is not None:
        return MeanStatistic(n, value.numerator, value.sum_squares)
    return None


def _test(before: KpiValue, after: KpiValue) -> tuple[float | None, float | None]:
    """(relative effect, p-value) of after vs before, when both are testable."""
    a, b = _statistic(before), _statistic(after)
    if a is None or b is None:
        return None, None
    result = compare(a, [b], AnalysisSettings(alpha=ALPHA))[0]
    return result.effect, result.p_value


def kpi_changes(current: dict[str, KpiValue], previous: dict[str, KpiValue]) -> list[KpiChange]:
    changes = []
    for definition in KPI_DEFINITIONS:
        now = current.get(definition.name)
        if now is None:
            continue
        before = previous.get(definition.name)
        change = None
        if before is not None and now.value is not None and before.value not in (None, 0):
            change = now.value / before.value - 1
        testable = before is not None and definition.name not in MATURING_KPIS
        effect, p_value = _test(before, now) if testable and before is not None else (None, None)
        significant = p_value is not None and p_value < ALPHA
        improved = (effect > 0) == definition.higher_is_better if significant and effect is not None else None
        changes.append(KpiChange(definition.name, now, before, change, p_value, significant, improved))
    return changes


def rank_personas(snapshot: KpiSnapshot, category: KpiCategory | None = None) -> list[PersonaRanking]:
    """Per KPI (of `category`), personas best first; best vs worst tested, Holm across the KPIs tested."""
    drafts = []
    for definition in KPI_DEFINITIONS:
        if category is not None and definition.category != category:
            continue
        values = [
            (p, kpis[definition.name]) for p, kpis in snapshot.personas.items() if definition.name in kpis
        ]
        known = [(p, v) for p, v in values if v.value is not None]
        known.sort(key=lambda item: item[1].value or 0.0, reverse=definition.higher_is_better)
        ranking = tuple(PersonaRank(p, v.value, v.n) for p, v in known) + tuple(
            PersonaRank(p, None, v.n) for p, v in values if v.value is None
        )
        p_value = None
        if len(known) >= 2:
            _, p_value = _test(known[-1][1], known[0][1])
        drafts.append((definition.name, ranking, known[0][0] if known else None, p_value))
    tested = [p for _, _, _, p in drafts if p is not None]
    adjusted = iter(holm(np.asarray(tested)).tolist()) if tested else iter(())
    rankings = []
    for name, ranking, best, p_value in drafts:
        p_adjusted = next(adjusted) if p_value is not None else None
        significant = p_adjusted is not None and p_adjusted < ALPHA
        note = None if p_value is not None else "not testable (derived KPI or too few personas with data)"
        rankings.append(
            PersonaRanking(name, ranking, best if significant else None, p_adjusted, significant, note)
        )
    return rankings
