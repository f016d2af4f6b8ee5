"""Terminal rendering of an experiment analysis (demo and CLI): one table of metrics, then the verdict."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tools.experiments.analysis import ExperimentResults, MetricOutcome
from tools.stats.results import EffectResult


def results_view(results: ExperimentResults) -> RenderableType:
    """A heading, one narrow table per metric (fits an 80-column terminal), then SRM, power and the verdict."""
    units = ", ".join(f"{name} {count:,}" for name, count in results.units.items())
    heading = Text.assemble(
        (f"{results.name}", "bold"),
        f" ({results.experiment_key}, {results.mode}, {results.status}) — {units}",
    )
    return Group(
        heading, *(_metric_table(outcome, results.engine) for outcome in results.metrics), _verdict(results)
    )


def _metric_table(outcome: MetricOutcome, engine: str) -> Table:
    title = f"{outcome.metric.name} · {outcome.role}" + (
        f" · margin {outcome.margin:.0%}" if outcome.margin else ""
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("variant", "n", "value"):
        table.add_column(header, no_wrap=True)
    table.add_column("effect [95% CI]", min_width=16, max_width=16)
    p_header = "p (adj.)" if outcome.role == "primary" else "p"
    table.add_column("chance to win" if engine == "bayesian" else p_header, no_wrap=True)
    guardrail = outcome.role == "guardrail"
    if guardrail:
        table.add_column("guardrail", no_wrap=True)
    control = outcome.result.control
    table.add_row(
        control.name, f"{control.n:,}", _value(control.mean, outcome), "control", "", *([""] * guardrail)
    )
    for effect in outcome.result.variants:
        status = [outcome.guardrail_status.get(effect.name, "")] if guardrail else []
        table.add_row(
            effect.name,
            f"{effect.n:,}",
            _value(effect.mean, outcome),
            *_effect_cells(effect, engine),
            *status,
        )
    return table


def _value(mean: float | None, outcome: MetricOutcome) -> str:
    if mean is None:
        return "—"
    if outcome.metric.kind == "conversion":
        return f"{mean:.1%}"
    if outcome.metric.kind == "time_to_value":
        return f"{mean / 60:,.1f} min"
    return f"{mean:,.3f}"


def _effect_cells(effect: EffectResult, engine: str) -> tuple[str, str]:
    if effect.error is not None:
        return (effect.error, "—")
    ci = effect.ci or (None, None)
    interval = f"{_percent(effect.effect)}\n[{_percent(ci[0])}, {_percent(ci[1])}]"
    evidence = effect.chance_to_win if engine == "bayesian" else effect.p_value
    return (interval, "—" if evidence is None else f"{evidence:.2g}")


def _percent(value: float | None) -> str:
    return "∞" if value is None else f"{value:+.1%}"


def _verdict(results: ExperimentResults) -> Text:
    lines = Text()
    srm = "none" if not results.srm else "MISMATCH"
    srm_p = f" (p = {results.srm_p_value:.3g})" if results.srm_p_value is not None else ""
    lines.append(f"Sample ratio: {srm}{srm_p}.  ")
    if results.power is not None:
        lines.append(f"Power ({results.power.metric}): {results.power.message}.\n")
    level = results.confidence_level
    confidence = "" if level is None else f", confidence {'>99.9%' if level > 0.999 else f'{level:.1%}'}"
    if results.winner is not None:
        lines.append(f"Winner: {results.winner}{confidence}", style="bold green")
        lines.append(f" — {results.winner_reason}.")
    else:
        lines.append(f"No winner{confidence}", style="bold yellow")
        lines.append(f" — {results.winner_reason}.")
    return lines
