"""detect_signals: what the gathered evidence says, as Signals with stable ids (S1, S2, … in detection order).

Order: metric changes, KPI changes, survey shifts, experiment results, escalations, survey themes, deployments;
within a kind, the order of the gathered data (measures in definition order, everyone before the personas, the
personas alphabetically). The same gathered data always yields the same signals.

Metric, KPI and survey comparisons form one family of tests per retro: every comparison with a p-value whose two
sides both reach the minimum sample (`min_sample`; `survey_min_sample` for survey answers). Their p-values are
adjusted together (Holm, or Benjamini–Hochberg with correction="bh", tools.stats.corrections); a comparison is a
signal when its adjusted p-value is below alpha and its change reaches the effect floor (relative change; for
NPS, `effect_floor` × 100 points). A signal's `p_value` is the adjusted one (the raw one is in its facts), and
its interval of the change is at the level that matches the correction (Bonferroni α/m for Holm, the FCR level
for BH). `affected_users` is the segment's n when its units are users, else its active users in the window.

Attribution: see tools.retro.attribution (onset in the daily series; escalations follow the metric change of
their metric and persona, or their opening time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from tools.retro import signal_records
from tools.retro.attribution import change_onset, deployment_for
from tools.retro.gathered import finite, statistic
from tools.retro.model import RetroWindow, Signal
from tools.stats import AnalysisSettings, compare
from tools.stats.corrections import adjust_p_values, interval_alpha

if TYPE_CHECKING:
    from tools.retro.gather import GatherSettings

TESTED_FAMILIES = (("metrics", "metric_change"), ("kpis", "kpi_change"), ("surveys", "survey_shift"))
# Measures whose n counts users; other n count reports, campaigns, tasks or answers (reach: active users).
USER_UNITS = frozenset(
    {
        "time_to_value",
        "error_rate",
        "support_incidents",
        "retention_rate",
        "upsell_rate",
        "feature_reuse_rate",
    }
)
ACTIVE_USERS_METRIC = "error_rate"  # its n is the active users of the segment in the window


@dataclass(frozen=True, slots=True)
class _Test:
    kind: str
    item: Mapping[str, Any]
    record: Mapping[str, Any]


def detect_signals(
    gathered: Mapping[str, Mapping[str, Any]], window: RetroWindow, settings: GatherSettings
) -> list[Signal]:
    tests = _eligible(gathered, settings)
    p_values = np.asarray([t.record["p_value"] for t in tests], dtype=float)
    adjusted = adjust_p_values(p_values, settings.correction).tolist()
    level_alpha = interval_alpha(p_values, settings.alpha, settings.correction)
    active = _active_users(gathered.get("metrics"))
    deployments = _in_window((gathered.get("deployments") or {}).get("deployments", []), window)
    drafts: list[Signal] = []
    links: list[int | None] = []  # per draft, the index of the deployment it is attributed to
    for test, p_adjusted in zip(tests, adjusted, strict=True):
        if p_adjusted < settings.alpha and _large_enough(test.record, settings.effect_floor):
            onset = _onset(test)
            link = deployment_for(onset, deployments, settings.bake_hours) if onset is not None else None
            signal = _test_signal(test, p_adjusted, len(tests), level_alpha, settings, active, onset)
            if link is not None:
                signal = replace(signal, attributed_to=str(deployments[link]["version"]))
            drafts.append(signal)
            links.append(link)
    for signal in signal_records.experiment_signals(gathered.get("experiments")):
        drafts.append(signal)
        links.append(None)
    for signal, link in signal_records.escalation_signals(
        gathered.get("escalations"), drafts, links, deployments, settings.bake_hours
    ):
        drafts.append(
            signal if link is None else replace(signal, attributed_to=str(deployments[link]["version"]))
        )
        links.append(link)
    drafts += signal_records.theme_signals(gathered.get("surveys"))
    numbered = [replace(signal, id=f"S{i}") for i, signal in enumerate(drafts, start=1)]
    for index, deployment in enumerate(deployments):
        attributed = [numbered[i] for i, link in enumerate(links) if link == index]
        numbered.append(
            signal_records.deployment_signal(f"S{len(numbered) + 1}", deployment, attributed, settings)
        )
    return numbered


def _in_window(deployments: Sequence[Mapping[str, Any]], window: RetroWindow) -> list[Mapping[str, Any]]:
    """The deployments in [start, end): only these get a signal and can be attributed changes."""
    kept = []
    for deployment in deployments:
        try:
            moment = datetime.fromisoformat(str(deployment.get("deployed_at")))
        except ValueError:
            continue
        if window.start <= (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) < window.end:
            kept.append(deployment)
    return kept


def _eligible(gathered: Mapping[str, Mapping[str, Any]], settings: GatherSettings) -> list[_Test]:
    tests = []
    for family, kind in TESTED_FAMILIES:
        minimum = settings.survey_min_sample if kind == "survey_shift" else settings.min_sample
        for item in (gathered.get(family) or {}).get("items", []):
            for record in item.get("segments", []):
                if record.get("p_value") is None or min(record["n"], record["baseline_n"]) < minimum:
                    continue
                tests.append(_Test(kind, item, record))
    return tests


def _large_enough(record: Mapping[str, Any], effect_floor: float) -> bool:
    change, value, baseline = record.get("change"), record.get("value"), record.get("baseline")
    if change is None:  # a relative change from a baseline of 0: any move is infinitely large
        return value is not None and baseline is not None and value != baseline
    floor = (
        effect_floor * record.get("scale", 1.0) if record.get("difference") == "absolute" else effect_floor
    )
    return abs(change) >= floor


def _test_signal(
    test: _Test, p_adjusted: float, family_size: int, level_alpha: float, settings: GatherSettings,
    active: Mapping[str | None, int], onset: date | None,
) -> Signal:  # fmt: skip
    record, item = test.record, test.item
    value, baseline, change = record["value"], record["baseline"], record["change"]
    absolute = record.get("difference") == "absolute"
    higher = item.get("higher_is_better")
    moved = (value - baseline) if value is not None and baseline is not None else 0.0
    direction = (
        "neutral" if higher is None or moved == 0 else ("improved" if (moved > 0) == higher else "worsened")
    )
    facts: dict[str, float | int | str] = {
        "p_value_unadjusted": float(record["p_value"]), "tests_in_family": family_size,
        "correction": settings.correction,
    }  # fmt: skip
    if not absolute and value is not None and baseline is not None:
        facts["absolute_difference"] = value - baseline
    interval = _change_interval(record, level_alpha)
    if interval is not None:
        facts.update(ci_low=interval[0], ci_high=interval[1], ci_level=1 - level_alpha)
    if record.get("value_ci"):
        low, high = record["value_ci"]
        if low is not None and high is not None:
            facts.update(value_ci_low=low, value_ci_high=high)
    if onset is not None:
        facts["onset_day"] = onset.isoformat()
    unit = "nps_points" if absolute else item.get("unit")
    name, persona = item["name"], record["persona"]
    reach = record["n"] if name in USER_UNITS else active.get(persona, record["n"])
    return Signal(
        id="", kind=test.kind, metric=name, persona=persona, value=value, baseline=baseline, change=change,
        p_value=p_adjusted, detail=_detail(test, p_adjusted, family_size, settings, unit), unit=unit,
        n=record["n"], baseline_n=record["baseline_n"], direction=direction, significant=True,
        affected_users=int(reach), facts=facts,
    )  # fmt: skip


def _detail(
    test: _Test, p_adjusted: float, family_size: int, settings: GatherSettings, unit: str | None
) -> str:
    record, name = test.record, test.item["name"]
    who = record["persona"] or "everyone"
    value, baseline, change = record["value"], record["baseline"], record["change"]
    if record.get("difference") == "absolute":
        moved = f"{change:+.1f} NPS points (absolute difference)"
    else:
        moved = f"{change:+.1%}" if change is not None else "from 0"
    return (
        f"{name} for {who}: {baseline:.4g} → {value:.4g} {unit or ''} ({moved}); "
        f"p = {p_adjusted:.2g}, {settings.correction}-adjusted across {family_size} tests; "
        f"n = {record['n']} vs {record['baseline_n']} in the baseline"
    )


def _change_interval(record: Mapping[str, Any], level_alpha: float) -> tuple[float, float] | None:
    """The interval of the change at the correction's level, from the sufficient statistics the test used."""
    before, after = statistic(record.get("previous")), statistic(record.get("current"))
    if before is None or after is None:
        return None
    absolute = record.get("difference") == "absolute"
    settings = AnalysisSettings(alpha=level_alpha, difference="absolute" if absolute else "relative")
    result = compare(before, [after], settings)[0]
    if result.ci is None or result.ci[0] is None or result.ci[1] is None:
        return None
    scale = float(record.get("scale", 1.0)) if absolute else 1.0
    low, high = finite(result.ci[0] * scale), finite(result.ci[1] * scale)
    return (low, high) if low is not None and high is not None else None


def _active_users(metrics: Mapping[str, Any] | None) -> dict[str | None, int]:
    for item in (metrics or {}).get("items", []):
        if item["name"] == ACTIVE_USERS_METRIC:
            return {record["persona"]: int(record["n"]) for record in item["segments"]}
    return {}


def _onset(test: _Test) -> date | None:
    """When a metric change started (only metrics have a daily series to date it)."""
    record = test.record
    if test.kind != "metric_change":
        return None
    return change_onset(record.get("daily") or [], record.get("value"), record.get("baseline"))
