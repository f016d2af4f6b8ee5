"""When did a change start, and which deployment does that point to.

Onset (`change_onset`): a single change point in the window's daily series, fitted by weighted least squares.
Before the change point the series is held at the baseline's level, from it on at its own mean; the day that
minimises Σ n_d·(v_d − level)² is the onset (n_d, the day's units, is the inverse-variance weight of a daily
mean). "No change inside the window" is one of the candidates, so a series that stays at the baseline level gets
no onset, and so does a fit whose level after the onset moved against the change. Holding the before-level at
the baseline (instead of fitting it) is what makes a change on the window's first day detectable, and one noisy
day cannot win on its own: the whole tail from the onset on must sit at the new level.

Daily points are on a per-day scale (errors per user active that day) while the window's value is on the
window's scale (errors per user active in the window); the ratio of the two levels in the window carries the
baseline's value onto the daily scale (for means and proportions the ratio is 1).

Attribution (`deployment_for`): a change whose onset day overlaps [deployed_at, deployed_at + bake] is attributed
to that deployment; with several, to the latest one deployed before the onset day ended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

DAY = timedelta(days=1)


def change_onset(
    daily: Sequence[Mapping[str, Any]], value: float | None, baseline: float | None
) -> date | None:
    points = [
        (date.fromisoformat(p["day"]), float(p["n"]), float(p["value"]))
        for p in daily
        if p.get("value") is not None and p.get("n")
    ]
    if not points or value is None or baseline is None or value == 0 or value == baseline:
        return None
    weight = sum(n for _, n, _ in points)
    level = sum(n * v for _, n, v in points) / weight
    before = baseline * level / value  # the baseline on the daily scale
    direction = 1.0 if value > baseline else -1.0
    best_error = sum(n * (v - before) ** 2 for _, n, v in points)  # no change inside the window
    onset = None
    for t in range(len(points)):
        tail = points[t:]
        tail_weight = sum(n for _, n, _ in tail)
        after = sum(n * v for _, n, v in tail) / tail_weight
        if (after - before) * direction <= 0:
            continue
        error = sum(n * (v - before) ** 2 for _, n, v in points[:t]) + sum(
            n * (v - after) ** 2 for _, n, v in tail
        )
        if error < best_error:
            best_error, onset = error, points[t][0]
    return onset


def deployment_for(onset: date, deployments: Sequence[Mapping[str, Any]], bake_hours: float) -> int | None:
    """Index (into `deployments`) of the deployment the change starting on `onset` is attributed to, if any."""
    day_start = datetime.fromisoformat(onset.isoformat() + "T00:00:00+00:00")
    day_end = day_start + DAY
    chosen: tuple[datetime, int] | None = None
    for index, deployment in enumerate(deployments):
        deployed_at = _moment(deployment.get("deployed_at"))
        if deployed_at is None:
            continue
        overlaps = deployed_at < day_end and day_start <= deployed_at + timedelta(hours=bake_hours)
        if overlaps and (chosen is None or deployed_at >= chosen[0]):
            chosen = (deployed_at, index)
    return chosen[1] if chosen else None


def deployment_at(
    moment: datetime, deployments: Sequence[Mapping[str, Any]], bake_hours: float
) -> int | None:
    """Index of the latest deployment whose bake window [deployed_at, deployed_at + bake] contains `moment`."""
    chosen: tuple[datetime, int] | None = None
    for index, deployment in enumerate(deployments):
        deployed_at = _moment(deployment.get("deployed_at"))
        if deployed_at is None or not deployed_at <= moment <= deployed_at + timedelta(hours=bake_hours):
            continue
        if chosen is None or deployed_at >= chosen[0]:
            chosen = (deployed_at, index)
    return chosen[1] if chosen else None


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
