"""The JSON shape the gather families share, and the small helpers that build and read it.

Gathered data lives in LangGraph checkpoints, so it holds only dicts, lists, str, float, int, bool and None
(datetimes as ISO 8601 strings, no NaN or infinities). A "comparison" is one test of one segment (a persona, or
everyone when `persona` is None) of one measure, the current window against the baseline:

    {"persona": str | None, "value": float | None, "baseline": float | None, "n": int, "baseline_n": int,
     "change": float | None, "p_value": float | None, "difference": "relative" | "absolute", "scale": float,
     "current": Side | None, "previous": Side | None, "value_ci": [low, high] | None}

`change` is relative (value / baseline − 1) for "relative" comparisons and value − baseline for "absolute" ones;
`p_value` is the unadjusted two-sided p-value of tools.stats (None when no test applies). A Side holds the
sufficient statistics the test ran on, `{"n": int, "total": float, "sum_squares": float, "binomial": bool}`, so
detect_signals can rebuild the statistics and compute intervals at the level its correction needs; `scale`
turns an absolute difference of those statistics into the measure's unit (NPS: 100 points per unit of score).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tools.retro.model import RetroWindow
from tools.stats import BinomialStatistic, MeanStatistic, Statistic, StatisticInputError
from tools.window import Window

Difference = Literal["relative", "absolute"]


def finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def pair(values: Sequence[float | None] | None) -> list[float | None] | None:
    if values is None:
        return None
    return [finite(v) for v in values]


def window_dict(window: RetroWindow) -> dict[str, Any]:
    return {
        "kind": window.kind, "start": iso(window.start), "end": iso(window.end),
        "baseline_start": iso(window.baseline_start), "baseline_end": iso(window.baseline_end),
        "sprint_id": window.sprint_id, "version": window.version, "deployed_at": iso(window.deployed_at),
    }  # fmt: skip


def current_window(window: RetroWindow) -> Window:
    """The window as tools.window sees it; its `previous()` must be the retro's baseline (the tools compare with
    the window of equal length just before, which is how tools.retro.window builds every retro window)."""
    span = Window(window.start, window.end)
    previous = span.previous()
    if (previous.start, previous.end) != (window.baseline_start, window.baseline_end):
        raise ValueError(
            "baseline: the baseline must be the window of equal length just before the retro window "
            f"({previous.start.isoformat()} to {previous.end.isoformat()})"
        )
    return span


def side(n: int, total: float | None, sum_squares: float | None, *, binomial: bool) -> dict[str, Any] | None:
    """One window's sufficient statistics, or None when there is nothing to test."""
    if not n or total is None or sum_squares is None:
        return None
    return {"n": int(n), "total": float(total), "sum_squares": float(sum_squares), "binomial": binomial}


def statistic(data: Mapping[str, Any] | None) -> Statistic | None:
    if not data:
        return None
    try:
        if data["binomial"]:
            return BinomialStatistic(int(data["n"]), float(data["total"]))
        return MeanStatistic(int(data["n"]), float(data["total"]), float(data["sum_squares"]))
    except StatisticInputError:
        return None


@dataclass(frozen=True, slots=True)
class Comparison:
    """What a family knows about one segment; `record()` is its JSON form (see the module docstring)."""

    persona: str | None
    value: float | None
    baseline: float | None
    n: int
    baseline_n: int
    change: float | None
    p_value: float | None
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    value_ci: Sequence[float | None] | None = None
    difference: Difference = "relative"
    scale: float = 1.0

    def record(self, **extra: Any) -> dict[str, Any]:
        return {
            "persona": self.persona, "value": finite(self.value), "baseline": finite(self.baseline),
            "n": int(self.n), "baseline_n": int(self.baseline_n), "change": finite(self.change),
            "p_value": finite(self.p_value), "difference": self.difference, "scale": self.scale,
            "current": self.current, "previous": self.previous, "value_ci": pair(self.value_ci), **extra,
        }  # fmt: skip


def wanted(persona: str | None, personas: Sequence[str] | None) -> bool:
    """Everyone (None) is always kept; a persona when no list was given or when it is listed."""
    return persona is None or personas is None or persona in personas
