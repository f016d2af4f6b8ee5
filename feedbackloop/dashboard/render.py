"""DashboardData → one self-contained HTML page (inline CSS and SVG; no script, no external resource).

This module only formats: numbers become strings by unit, significance becomes a tone, series become SVG. The
template lays those strings out. The page has its own Jinja environment with autoescape on, because persona
names, reasons and panel rows come from users and must never become markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from feedbackloop.dashboard.data import DashboardData, KpiCard
from prompts import TEMPLATE_DIR
from tools.charts import PALETTE, format_day, format_value, line_chart, sparkline, unit_caption
from tools.kpis.definitions import KPIS_BY_NAME
from tools.kpis.model import KpiValue
from tools.metrics.model import MetricComparison, MetricReport

TEMPLATE_NAME = "dashboard.html.j2"
CATEGORY_TITLES = {
    "business_success": "Business success",
    "operational_ease": "Operational ease",
    "user_success": "User success",
}
ALL_USERS_SERIES = "All users"


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_dashboard(data: DashboardData) -> str:
    """The whole page for `data`. Pure: the same data renders to the same string."""
    return environment().get_template(TEMPLATE_NAME).render(page=build_page(data))


# ---------------------------------------------------------------- view models (strings ready to print)


@dataclass(frozen=True, slots=True)
class ChangeView:
    """A change vs the previous window. `tone` is good/bad only when the change is significant."""

    text: str  # "+12.4%" or "—"
    arrow: str  # ▲ ▼ ▬ or ""
    tone: str  # good | bad | neutral
    verdict: str  # "Significant improvement · p = 0.003", "Not significant · p = 0.41", …


@dataclass(frozen=True, slots=True)
class CardView:
    name: str
    label: str
    value: str
    missing: bool
    previous: str
    caption: str
    direction: str
    n: str
    reason: str | None
    change: ChangeView


@dataclass(frozen=True, slots=True)
class CardGroup:
    title: str
    cards: list[CardView]


@dataclass(frozen=True, slots=True)
class TableCell:
    value: str
    n: str
    reason: str | None
    leader: bool


@dataclass(frozen=True, slots=True)
class TableRow:
    label: str
    caption: str
    cells: list[TableCell]


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One line of a chart's headline table: the series colour, now, before, change, n."""

    name: str
    colour: str
    value: str
    previous: str
    change: ChangeView
    n: str


@dataclass(frozen=True, slots=True)
class ChartView:
    metric: str
    title: str
    direction: str
    value: str
    n: str
    spread: str  # "p50 12 min · p90 41 min" for durations, "" otherwise
    change: ChangeView
    trend: Markup
    svg: Markup
    rows: list[SeriesRow]


@dataclass(frozen=True, slots=True)
class PanelView:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Page:
    title: str
    period: str
    window_iso: str
    days: str
    persona: str
    generated: str
    summary: list[tuple[str, str]]  # (tone, text) chips
    groups: list[CardGroup]
    personas: list[str]
    leaders: int
    table: list[TableRow]
    charts: list[ChartView]
    panels: list[PanelView]
    notes: list[str]


def build_page(data: DashboardData) -> Page:
    first_day, last_day = data.window.dates()[0], data.window.dates()[-1]
    return Page(
        title="KPI dashboard",
        period=f"{_long_day(first_day)} – {_long_day(last_day)}",
        window_iso=f"[{data.window.start.isoformat()}, {data.window.end.isoformat()})",
        days=f"{data.window.days:g}",
        persona=data.persona or "All personas",
        generated=data.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summary=_summary(data.cards),
        groups=_card_groups(data.cards),
        personas=list(data.persona_kpis),
        leaders=len(data.persona_leaders),
        table=_persona_table(data),
        charts=[_chart(report) for report in data.metrics],
        panels=[PanelView(p.title, p.columns, p.rows) for p in data.panels if p.rows],
        notes=list(data.notes),
    )


def _long_day(day: date) -> str:
    return f"{format_day(day)}, {day.year}"


# ---------------------------------------------------------------- changes and cards


def change_view(
    change: float | None, p_value: float | None, significant: bool, improved: bool | None
) -> ChangeView:
    """Colour only what the statistics back: green/red when significant, grey otherwise, whatever the size."""
    tone = "neutral"
    if significant and improved is not None:
        tone = "good" if improved else "bad"
    p_text = f" · p {_p_value(p_value)}" if p_value is not None else ""
    verdicts = {"good": "Significant improvement", "bad": "Significant decline"}
    if tone in verdicts:
        verdict = verdicts[tone] + p_text
    elif significant:  # significant, but no direction is "better" for this measure
        verdict = f"Significant change{p_text}"
    else:
        verdict = f"Not significant{p_text}" if p_value is not None else "No significance test"
    if change is None or not math.isfinite(change):
        return ChangeView("—", "", tone, verdict)
    arrow = "▲" if change > 0.0005 else "▼" if change < -0.0005 else "▬"
    return ChangeView(f"{change * 100:+.1f}%", arrow, tone, verdict)


def _p_value(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


def _direction(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return ""
    return "Higher is better" if higher_is_better else "Lower is better"


def _card(card: KpiCard) -> CardView:
    definition = KPIS_BY_NAME.get(card.name)
    return CardView(
        name=card.name,
        label=card.label,
        value=format_value(card.value, card.unit),
        missing=card.value is None,
        previous=format_value(card.previous_value, card.unit),
        caption=unit_caption(card.unit),
        direction=_direction(definition.higher_is_better if definition else None),
        n=f"{card.n:,}",
        reason=card.reason,
        change=change_view(card.change, card.p_value, card.significant, card.improved),
    )


def _card_groups(cards: list[KpiCard]) -> list[CardGroup]:
    """Cards by category, known categories first in their business order, then any other in data order."""
    order = list(CATEGORY_TITLES) + [c.category for c in cards if c.category not in CATEGORY_TITLES]
    groups = []
    for category in dict.fromkeys(order):
        members = [_card(card) for card in cards if card.category == category]
        if members:
            title = CATEGORY_TITLES.get(category, category.replace("_", " ").capitalize())
            groups.append(CardGroup(title, members))
    return groups


def _summary(cards: list[KpiCard]) -> list[tuple[str, str]]:
    """Counts for the header: each card in exactly one chip (missing values are not "no change")."""
    missing = sum(card.value is None for card in cards)
    tones = [
        change_view(c.change, c.p_value, c.significant, c.improved).tone for c in cards if c.value is not None
    ]
    chips = [
        ("good", f"{tones.count('good')} significant improvement{'s' * (tones.count('good') != 1)}"),
        ("bad", f"{tones.count('bad')} significant decline{'s' * (tones.count('bad') != 1)}"),
        ("neutral", f"{tones.count('neutral')} without a significant change"),
    ]
    if missing:
        chips.append(("missing", f"{missing} without data"))
    return chips


# ---------------------------------------------------------------- persona table


def _persona_table(data: DashboardData) -> list[TableRow]:
    """Rows follow the cards' order, then any KPI only the persona breakdown has."""
    labels = {card.name: (card.label, card.unit) for card in data.cards}
    names = list(labels) + [
        name for values in data.persona_kpis.values() for name in values if name not in labels
    ]
    rows = []
    for name in dict.fromkeys(names):
        definition = KPIS_BY_NAME.get(name)
        label, unit = labels.get(
            name, (name.replace("_", " ").capitalize(), definition.unit if definition else "")
        )
        cells = [
            _table_cell(values.get(name), unit, data.persona_leaders.get(name) == persona)
            for persona, values in data.persona_kpis.items()
        ]
        rows.append(TableRow(label, unit_caption(unit), cells))
    return rows


def _table_cell(kpi: KpiValue | None, unit: str, leader: bool) -> TableCell:
    if kpi is None:
        return TableCell("—", "", "not computed for this persona", leader)
    return TableCell(format_value(kpi.value, unit), f"{kpi.n:,}", kpi.reason, leader)


# ---------------------------------------------------------------- charts


def _chart(report: MetricReport) -> ChartView:
    overall = report.overall
    unit = overall.current.unit
    comparisons = report.personas or {ALL_USERS_SERIES: overall}
    series = {name: [(point.day, point.value) for point in c.daily] for name, c in comparisons.items()}
    title = report.metric.replace("_", " ").capitalize()
    return ChartView(
        metric=report.metric,
        title=title,
        direction=_direction(report.higher_is_better),
        value=format_value(overall.current.value, unit),
        n=f"{overall.current.n:,}",
        spread=_spread(overall),
        change=change_view(overall.change, overall.p_value, overall.significant, overall.improved),
        # bandit B704: charts escape every text
        trend=Markup(sparkline([p.value for p in overall.daily], unit=unit, label=f"{title}, all users")),  # nosec B704
        # bandit B704: charts escape every text
        svg=Markup(line_chart(series, unit=unit, title=f"{title} per day")),  # nosec B704
        rows=[_series_row(index, name, c, unit) for index, (name, c) in enumerate(comparisons.items())],
    )


def _spread(comparison: MetricComparison) -> str:
    current = comparison.current
    if current.p50 is None and current.p90 is None:
        return ""
    return f"p50 {format_value(current.p50, current.unit)} · p90 {format_value(current.p90, current.unit)}"


def _series_row(index: int, name: str, comparison: MetricComparison, unit: str) -> SeriesRow:
    # The same palette index as the chart's line, so the table doubles as the legend.
    return SeriesRow(
        name=name,
        colour=PALETTE[index % len(PALETTE)],
        value=format_value(comparison.current.value, unit),
        previous=format_value(comparison.previous.value, unit),
        change=change_view(
            comparison.change, comparison.p_value, comparison.significant, comparison.improved
        ),
        n=f"{comparison.current.n:,}",
    )
