"""The retro's gather step: one function per tool family, each returning JSON-ready data about the window and its
baseline, computed by the existing tools (SQL aggregation in the store, tests from tools.stats).

`gather(connection, family, window, settings)` is what the retro graph fans out over (`FAMILIES`); every family is
independent of the others, so they may run in any order or in parallel (each on its own connection). The shape
of each family's dict is described in its module: tools.retro.gather_metrics (metrics, kpis),
tools.retro.gather_surveys (surveys), tools.retro.gather_events (experiments, escalations, deployments).

Pass a connection from `Database.read()`: the experiments family analyses through the experiments service on
the same engine, which first brings per-user values up to date in short write transactions of its own (as the
worker does), so the connection must not hold SQLite's write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from tools.retro import gather_events, gather_metrics, gather_surveys
from tools.retro.gathered import window_dict
from tools.retro.model import RetroWindow
from tools.retro.window import RetroInputError
from tools.stats.corrections import Correction

FAMILIES = ("metrics", "kpis", "experiments", "escalations", "surveys", "deployments")
CORRECTIONS = ("holm", "bh")


@dataclass(frozen=True, slots=True)
class GatherSettings:
    """How evidence is gathered and judged.

    `min_sample` is the n each side of a metric or KPI test needs (`survey_min_sample` for survey answers);
    `alpha` is the family-wise (Holm) or false-discovery (BH) level across every test of one retro;
    `effect_floor` the smallest relative change worth a signal (NPS: that fraction of 100 points);
    `bake_hours` how soon after a deployment a change must start to be attributed to it; `personas` None means
    every persona with data; the overall segment (everyone) is always included.
    """

    min_sample: int = 30
    alpha: float = 0.05
    effect_floor: float = 0.10
    bake_hours: float = 24
    correction: Correction = "holm"
    personas: tuple[str, ...] | None = None
    survey_min_sample: int = 20
    comments_per_persona: int = 20
    renewal_window_days: int = 14
    gross_margin: float = 0.8

    def __post_init__(self) -> None:
        for name in ("min_sample", "survey_min_sample", "comments_per_persona", "renewal_window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**9:
                raise RetroInputError(name, f"must be a whole number from 1 to 10^9, got {value!r}")
        if not _number(self.alpha) or not 0 < self.alpha < 0.5:
            raise RetroInputError("alpha", f"must be between 0 and 0.5 (e.g. 0.05), got {self.alpha!r}")
        if not _number(self.effect_floor) or not 0 <= self.effect_floor < 100:
            raise RetroInputError(
                "effect_floor", f"must be a relative change ≥ 0 (0.1 = 10 %), got {self.effect_floor!r}"
            )
        if not _number(self.bake_hours) or not 0 < self.bake_hours <= 366 * 24:
            raise RetroInputError("bake_hours", f"must be a number of hours above 0, got {self.bake_hours!r}")
        if self.correction not in CORRECTIONS:
            raise RetroInputError(
                "correction", f"must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}"
            )
        if self.personas is not None and (
            not isinstance(self.personas, tuple) or not all(isinstance(p, str) and p for p in self.personas)
        ):
            raise RetroInputError("personas", "must be a tuple of persona keys, or None for every persona")
        if not _number(self.gross_margin) or not 0 < self.gross_margin <= 1:
            raise RetroInputError("gross_margin", f"must be a fraction in (0, 1], got {self.gross_margin!r}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


Family = Callable[[Connection, RetroWindow, GatherSettings], dict[str, Any]]
_FAMILY_FUNCTIONS: dict[str, Family] = {
    "metrics": gather_metrics.metrics,
    "kpis": gather_metrics.kpis,
    "experiments": gather_events.experiments,
    "escalations": gather_events.escalations,
    "surveys": gather_surveys.surveys,
    "deployments": gather_events.deployments,
}


def gather(
    connection: Connection, family: str, window: RetroWindow, settings: GatherSettings
) -> dict[str, Any]:
    """One family's evidence for `window` vs its baseline: {"family", "window", …family data}."""
    function = _FAMILY_FUNCTIONS.get(family)
    if function is None:
        raise RetroInputError("family", f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    return {"family": family, "window": window_dict(window), **function(connection, window, settings)}
