"""Rich renderings of experiments for `feedbackloop experiments list | show | analyze`."""

from __future__ import annotations

import json

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tools.experiments.analysis import ExperimentResults, MetricOutcome
from tools.experiments.metrics import ExperimentMetric
from tools.experiments.model import Experiment
from tools.stats.results import EffectResult
from tools.units import format_value

# bandit B105: a colour, not a password
GUARDRAIL_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}  # nosec B105


def experiments_table(experiments: list[Experiment]) -> Table:
    table = Table("key", "name", "type", "mode", "status", "variants", "primary metrics", "started", "decision",
                  title=f"{len(experiments)} experiment{'' if len(experiments) == 1 else 's'}")  # fmt: skip
    for experiment in experiments:
        spec = experiment.spec
        table.add_row(
            spec.key, spec.name, spec.type.value, spec.mode.value, experiment.status.value,
            ", ".join(f"{v.name} {v.weight:.0%}" for v in spec.variants),
            ", ".join(m.name for m in spec.primary_metrics),
            f"{experiment.started_at:%Y-%m-%d}" if experiment.started_at else "—", experiment.decision or "—",
        )  # fmt: skip
    return table


def experiment_detail(experiment: Experiment) -> Group:
    spec, phase = experiment.spec, experiment.phase
    facts = Table("field", "value", title=f"{spec.name} ({spec.key})", show_header=False)
    facts.add_row("status", experiment.status.value)
    facts.add_row("type / mode", f"{spec.type.value} / {spec.mode.value}")
    facts.add_row("hypothesis", spec.hypothesis or "—")
    facts.add_row("engine", f"{spec.engine}, alpha {spec.alpha:g}, correction {spec.correction}")
    facts.add_row("coverage", f"{spec.coverage:.0%}")
    facts.add_row("personas", ", ".join(spec.personas) or "everyone")
    facts.add_row("duration", f"{spec.duration_days} days")
    if phase is not None:
        facts.add_row("phase", f"{phase.index} since {phase.started_at:%Y-%m-%d %H:%M} (seed {phase.seed!r})")
    if experiment.decision:
        facts.add_row("decision", f"{experiment.decision} — {experiment.decision_notes or 'no notes'}")
    variants = Table("variant", "weight", "configuration", title="variants")
    for variant in spec.variants:
        variants.add_row(
            variant.name, f"{variant.weight:.1%}", json.dumps(variant.configuration, sort_keys=True)
        )
    metrics = Table("role", "metric", "kind", "definition", title="metrics")
    rows = [*(("primary", m, None) for m in spec.primary_metrics),
            *(("secondary", m, None) for m in spec.secondary_metrics),
            *(("guardrail", g.metric, g.margin) for g in spec.guardrails)]  # fmt: skip
    for role, metric, margin in rows:
        role_text = role if margin is None else f"guardrail (margin {margin:.1%})"
        metrics.add_row(role_text, metric.name, metric.kind, _definition(metric))
    return Group(facts, variants, metrics)


def results_view(results: ExperimentResults) -> Group:
    """Per metric per variant: n, mean, effect, CI, p-value or chance to win, guardrail status; then the verdict."""
    parts: list[Table | Text] = [
        Text(
            f"{results.name} ({results.experiment_key}) — {results.status}, phase {results.phase}, "
            f"{results.engine}, mode {results.mode}",
            style="bold",
        )
    ]
    parts.extend(_metric_table(outcome, results.engine) for outcome in results.metrics)
    parts.append(Text.from_markup(_srm_line(results)))
    if results.power is not None:
        parts.append(Text(f"power ({results.power.metric}): {results.power.message}"))
    parts.append(Text.from_markup(_verdict(results)))
    return Group(*parts)


def _metric_table(outcome: MetricOutcome, engine: str) -> Table:
    result, metric = outcome.result, outcome.metric
    direction = "lower is better" if metric.lower_is_better else "higher is better"
    evidence = "chance to win" if engine == "bayesian" else "p-value"
    interval = "CI" if engine == "frequentist" else "credible interval"
    columns = ["n", "mean", "effect", interval, evidence]
    margin = f", margin {outcome.margin or 0:.0%}" if outcome.role == "guardrail" else ""
    if outcome.role == "guardrail":
        columns.append("guardrail")
    title = f"{outcome.role}: {metric.name} ({metric.kind}, {direction}{margin})"
    table = Table(title=title, title_justify="left")
    table.add_column("variant", no_wrap=True)
    for column in columns:
        table.add_column(column, no_wrap=column != interval)
    control = [
        result.control.name,
        f"{result.control.n:,}",
        _mean(metric, result.control.mean),
        "control",
        "",
        "",
    ]
    table.add_row(*control, *([""] if outcome.role == "guardrail" else []))
    for effect in result.variants:
        row = [effect.name, f"{effect.n:,}", _mean(metric, effect.mean), *_effect_cells(effect, engine)]
        if outcome.role == "guardrail":
            status = outcome.guardrail_status.get(effect.name, "—")
            row.append(f"[{GUARDRAIL_STYLE.get(status, 'white')}]{status}[/]")
        table.add_row(*row)
    return table


def _effect_cells(effect: EffectResult, engine: str) -> list[str]:
    if effect.error is not None:
        return [f"[yellow]{effect.error}[/]", "", ""]
    low, high = effect.ci if effect.ci else (None, None)
    interval = f"[{_percent(low, signed=True)}, {_percent(high, signed=True)}]"
    evidence = _confidence(effect.chance_to_win) if engine == "bayesian" else _p_value(effect.p_value)
    return [_percent(effect.effect, signed=True), interval, evidence]


def _srm_line(results: ExperimentResults) -> str:
    units = ", ".join(
        f"{name} {count:,} (expected {results.expected_weights[name]:.0%})"
        for name, count in results.units.items()
    )
    if results.srm_p_value is None:
        return f"units: {units or 'none yet'}"
    verdict = "[red]sample ratio mismatch![/]" if results.srm else "[green]no sample ratio mismatch[/]"
    return f"units: {units}; SRM p = {results.srm_p_value:.3g}: {verdict}"


def _verdict(results: ExperimentResults) -> str:
    confidence = _confidence(results.confidence_level)
    if results.winner is not None:
        return f"[bold green]winner: {results.winner}[/] (confidence {confidence}) — {results.winner_reason}"
    best = "" if results.confidence_level is None else f" (best confidence {confidence})"
    return f"[bold]winner: none[/]{best} — {results.winner_reason}"


def _confidence(value: float | None) -> str:
    if value is None:
        return "—"
    return "> 99.9%" if value > 0.999 else f"{value:.1%}"  # "100.0%" would claim certainty


def _mean(metric: ExperimentMetric, value: float | None) -> str:
    if metric.kind == "conversion":
        return format_value(value, "ratio")
    if metric.kind == "time_to_value":
        return format_value(value, "seconds")
    return "—" if value is None else f"{value:,.4g}"


def _percent(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _definition(metric: ExperimentMetric) -> str:
    if metric.description:
        return metric.description
    what = metric.event or "time to value"
    if metric.property:
        what = f"{metric.property} of {what}"
    if metric.denominator_event:
        what = f"{what} ÷ {metric.denominator_event}"
    return f"{what} within {metric.window_hours:g} h of exposure"
