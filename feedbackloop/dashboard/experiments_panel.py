"""The dashboard's "Running experiments" panel: each running or paused experiment's split and current verdict."""

from __future__ import annotations

from datetime import datetime

from feedbackloop.dashboard.data import Panel
from store.database import Database
from tools.experiments.analysis import ExperimentResults, analyze
from tools.experiments.model import ExperimentStatus
from tools.experiments.service import ExperimentService

COLUMNS = (
    "Experiment",
    "Status",
    "Users per variant",
    "Primary metric",
    "Best variant vs control",
    "Verdict",
)


def experiments_panel(database: Database, now: datetime) -> Panel | None:
    service = ExperimentService(database)
    live = [
        e for e in service.experiments() if e.status in (ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)
    ]
    if not live:
        return None
    rows = [_row(analyze(service, experiment.key, now=now)) for experiment in live]
    return Panel("Running experiments", COLUMNS, tuple(rows))


def _row(results: ExperimentResults) -> tuple[str, ...]:
    units = " · ".join(f"{name} {count:,}" for name, count in results.units.items())
    primary = results.primary[0] if results.primary else None
    best = "—"
    if primary is not None:
        effects = [v for v in primary.result.variants if v.effect is not None and v.error is None]
        if effects:
            ahead = min(effects, key=lambda v: v.p_value if v.p_value is not None else 1.0)
            evidence = _evidence(ahead.p_value, ahead.chance_to_win)
            best = f"{ahead.name}: {ahead.effect:+.1%} ({evidence})"
    verdict = f"Winner: {results.winner}" if results.winner else f"No winner yet — {results.winner_reason}"
    if results.winner is None and results.power is not None and results.power.reached is False:
        verdict += f"; {results.power.message}"
    name = f"{results.name} ({results.experiment_key})"
    return (name, results.status, units, primary.metric.name if primary else "—", best, verdict)


def _evidence(p_value: float | None, chance_to_win: float | None) -> str:
    if p_value is not None:
        return f"p = {p_value:.2g}"
    return f"P(win) = {chance_to_win:.0%}" if chance_to_win is not None else "no test"
