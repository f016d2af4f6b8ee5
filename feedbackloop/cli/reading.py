"""Bodies of the read commands (`metrics`, `kpis`, `dashboard`): window parsing and rendering."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.kpis.definitions import KPI_DEFINITIONS
from tools.kpis.model import KpiSnapshot, KpiValue
from tools.metrics.model import MetricComparison, MetricReport
from tools.units import format_value
from tools.window import Window, WindowError


class ReadInputError(ValueError):
    """A bad option of a read command; printed and exit code 2."""


def window_option(days: int, end: str | None) -> Window:
    try:
        return Window.parse(days, end)
    except WindowError as error:
        message = str(error)
        for field in ("days", "end"):  # the CLI spells the fields as options
            if message.startswith(f"{field}:"):
                message = f"--{message}"
        raise ReadInputError(message) from None


def format_change(comparison: MetricComparison) -> str:
    if comparison.change is None:
        return "—"
    text = f"{comparison.change:+.1%}"
    if not comparison.significant:
        return text
    return f"[green]{text}[/]" if comparison.improved else f"[red]{text}[/]"


def metric_table(report: MetricReport) -> Table:
    unit = report.overall.current.unit
    title = f"{report.metric} ({unit}), {report.window.start:%Y-%m-%d} → {report.window.end:%Y-%m-%d}"
    table = Table("persona", "n", "value", "p50", "p90", "previous", "change", "p-value", title=title)
    rows: list[tuple[str, MetricComparison]] = [("everyone", report.overall), *report.personas.items()]
    for persona, comparison in rows:
        now = comparison.current
        table.add_row(
            persona,
            f"{now.n:,}",
            format_value(now.value, unit) if now.value is not None else f"— ({now.reason})",
            format_value(now.p50, unit),
            format_value(now.p90, unit),
            format_value(comparison.previous.value, unit),
            format_change(comparison),
            f"{comparison.p_value:.3g}" if comparison.p_value is not None else "—",
        )
    return table


def kpi_table(snapshot: KpiSnapshot, persona: str | None) -> Table:
    personas = [persona] if persona is not None else sorted(snapshot.personas)
    window = snapshot.window
    table = Table(
        "KPI", "everyone", *personas, title=f"KPIs, {window.start:%Y-%m-%d} → {window.end:%Y-%m-%d}"
    )
    for definition in KPI_DEFINITIONS:
        cells = [_kpi_cell(snapshot.overall.get(definition.name), definition.unit)]
        cells += [
            _kpi_cell(snapshot.personas.get(p, {}).get(definition.name), definition.unit) for p in personas
        ]
        table.add_row(definition.name, *cells)
    return table


def _kpi_cell(value: KpiValue | None, unit: str) -> str:
    if value is None:
        return "—"
    if value.value is None:
        return f"[dim]— ({value.reason})[/]"
    return f"{format_value(value.value, unit)} [dim](n={value.n:,})[/]"


def print_json(console: Console, body: dict[str, Any]) -> None:
    console.print_json(json.dumps(body, default=str))
