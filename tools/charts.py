"""SVG charts for the dashboard: pure functions from numbers to markup — no I/O, no JavaScript.

`format_value`, `format_day` and `unit_caption` live in tools.units and are re-exported here for the templates.

Every piece of text goes through `_text` (XML-escaped, XML-invalid characters dropped) and every coordinate is
rounded to 0.1 px, so the same input always gives the same string and the page can be diffed and cached.
Values that are None, NaN or infinite are gaps, never zeros.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from tools.units import finite_number, format_day, format_value, unit_caption

# Okabe–Ito: told apart under the common colour-vision deficiencies. Yellow goes last: it is faint on white.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442",
)  # fmt: skip
# A second channel besides colour, so series stay distinct on a greyscale print.
DASHES: tuple[str, ...] = ("", "6 3", "2 3", "9 3 2 3")
AXIS_COLOUR, GRID_COLOUR, MUTED_COLOUR = "#8c959f", "#e5e8eb", "#57606a"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"
DATE_TICK_STEPS_DAYS = (1, 2, 7, 14, 28, 56, 91, 182, 364)
LEGEND_LABEL_MAX_CHARS = 32
# Rough width of a 12 px system-font character: enough to lay out a legend without font metrics.
CHAR_WIDTH_PX = 6.6
MAX_PLOTTABLE = 1e15

Point = tuple[date, float | None]
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ---------------------------------------------------------------- formatting


def _plottable(value: float | None) -> float | None:
    """A finite value of sane size. Beyond ±1e15 (no KPI gets there) axis arithmetic overflows: treat as a gap."""
    number = finite_number(value)
    return number if number is not None and abs(number) <= MAX_PLOTTABLE else None


def _nice_step(span: float, target_intervals: int = 4) -> float:
    """The 1-2-2.5-5 × 10^k step closest above span / target_intervals (span > 0)."""
    raw = span / target_intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude * (1 + 1e-9):
            return multiple * magnitude
    return 10 * magnitude


@dataclass(frozen=True, slots=True)
class _Scale:
    low: float
    high: float
    step: float

    def ticks(self) -> list[float]:
        count = round((self.high - self.low) / self.step)
        ticks = [self.low + index * self.step for index in range(count + 1)]
        # low + k·step misses zero by a rounding error at times, which would print as "-0.0".
        return [0.0 if abs(tick) < self.step * 1e-9 else tick for tick in ticks]


def _value_scale(values: Sequence[float]) -> _Scale:
    """A padded, nicely-stepped range around `values` (non-empty). Constant data gets a band around it."""
    low, high = min(values), max(values)
    if high - low <= max(abs(low), abs(high)) * 1e-9 or high - low < 1e-12:
        # Flat (to float precision): widen so the scale has a height and no step underflows to zero.
        pad = abs(low) * 0.1 if abs(low) >= 1e-9 else 1.0
        low, high = low - pad, high + pad
        if min(values) >= 0:  # never invent negative ticks for data that cannot be negative
            low = max(low, 0.0)
    step = _nice_step(high - low)
    return _Scale(math.floor(low / step + 1e-9) * step, math.ceil(high / step - 1e-9) * step, step)


def _tick_decimals(step: float, unit: str) -> int:
    """Fewest decimals that keep neighbouring tick labels distinct."""
    shown = step * 100 if unit == "ratio" else step
    for places in range(5):
        scaled = shown * 10**places
        if abs(scaled - round(scaled)) < 1e-6:
            return places
    return 4


def _date_ticks(first: date, last: date) -> list[date]:
    span_days = (last - first).days
    step = next((s for s in DATE_TICK_STEPS_DAYS if span_days / s <= 6), DATE_TICK_STEPS_DAYS[-1])
    return [date.fromordinal(first.toordinal() + offset) for offset in range(0, span_days + 1, step)]


def _chart_unit(values: Sequence[float], unit: str) -> tuple[float, str]:
    """(divisor, unit) to plot in: seconds become minutes when they run into minutes, so ticks land on round values."""
    if unit == "seconds" and values and max(abs(v) for v in values) >= 90:
        return 60.0, "minutes"
    return 1.0, unit


# ---------------------------------------------------------------- markup helpers


def _text(value: object) -> str:
    return escape(_XML_INVALID.sub("", str(value)), quote=True)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _points(coordinates: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in coordinates)


def _svg_open(width: int, height: int, label: str, css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_text(label)}" '
        f'font-family="{_text(FONT)}" font-size="12"><title>{_text(label)}</title>'
    )


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split (x, y) pairs into runs of consecutive defined y: each run is one polyline; None starts a gap."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _run_markup(run: Sequence[tuple[float, float]], colour: str, dash: str, width: float) -> str:
    if len(run) == 1:  # a lone day between gaps: a polyline of one point would be invisible
        x, y = run[0]
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3" fill="{colour}"/>'
    dash_attribute = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{_points(run)}" fill="none" stroke="{colour}" stroke-width="{width}" '
        f'stroke-linejoin="round" stroke-linecap="round"{dash_attribute}/>'
    )


def _truncate(label: str, limit: int = LEGEND_LABEL_MAX_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# ---------------------------------------------------------------- line chart

PLOT_TOP_PX, X_AXIS_PX, LEGEND_ROW_PX, PLOT_RIGHT_PX = 26, 24, 20, 14


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area and its two scales: dates across, values up."""

    left: float
    top: float
    width: float
    height: float
    first_day: date
    span_days: int
    scale: _Scale

    def x(self, day: date) -> float:
        if self.span_days == 0:  # a single day: centre it rather than divide by zero
            return self.left + self.width / 2
        return self.left + (day - self.first_day).days / self.span_days * self.width

    def y(self, value: float) -> float:
        return self.top + (self.scale.high - value) / (self.scale.high - self.scale.low) * self.height


@dataclass(frozen=True, slots=True)
class _LegendItem:
    name: str
    shown: str
    colour: str
    dash: str
    x: float
    row: int


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    width: int = 640,
    height: int = 280,
    y_label: str = "",
    unit: str = "",
    title: str = "",
) -> str:
    """One line per series (a polyline per run of days with values: None leaves a gap), dated x axis, value
    ticks formatted by `unit`, a legend, and `<title>`/`aria-label`/`<desc>` for screen readers.

    Colours and dash patterns follow the order of `series`. Hovering a point shows its value (SVG `<title>`).
    """
    label = title or y_label or "Line chart"
    # Sorted by day so a line never doubles back, whatever order the caller's points came in.
    cleaned = {
        name: sorted(((day, _plottable(value)) for day, value in points), key=lambda point: point[0])
        for name, points in series.items()
    }
    divisor, plot_unit = _chart_unit([v for pts in cleaned.values() for _, v in pts if v is not None], unit)
    cleaned = {
        name: [(day, None if value is None else value / divisor) for day, value in points]
        for name, points in cleaned.items()
    }
    legend, legend_rows = _legend_layout(cleaned, width)
    plot_bottom = height - X_AXIS_PX - legend_rows * LEGEND_ROW_PX - (6 if legend_rows else 0)
    parts = [
        _svg_open(width, height, label, "chart line-chart"),
        f"<desc>{_text(_describe(cleaned, plot_unit))}</desc>",
    ]
    frame = _frame(cleaned, plot_unit, width, plot_bottom)
    if frame is None:
        parts.append(_no_data(width, plot_bottom))
    else:
        parts += [_y_axis(frame, plot_unit, y_label), _x_axis(frame)]
        parts += [
            _series_markup(name, points, frame, plot_unit, PALETTE[index % len(PALETTE)], _dash(index))
            for index, (name, points) in enumerate(cleaned.items())
        ]
    parts.append(_legend_markup(legend, plot_bottom + X_AXIS_PX + 14))
    parts.append("</svg>")
    return "".join(parts)


def _dash(index: int) -> str:
    return DASHES[index % len(DASHES)]


def _frame(
    cleaned: Mapping[str, Sequence[tuple[date, float | None]]], unit: str, width: int, plot_bottom: float
) -> _Frame | None:
    values = [v for points in cleaned.values() for _, v in points if v is not None]
    days = [day for points in cleaned.values() for day, v in points if v is not None]
    if not values:
        return None
    scale = _value_scale(values)
    decimals = _tick_decimals(scale.step, unit)
    widest = max(len(format_value(tick, unit, decimals=decimals)) for tick in scale.ticks())
    left = max(40.0, widest * CHAR_WIDTH_PX + 14)
    first, last = min(days), max(days)
    return _Frame(
        left=left,
        top=PLOT_TOP_PX,
        width=width - left - PLOT_RIGHT_PX,
        height=max(plot_bottom - PLOT_TOP_PX, 20.0),
        first_day=first,
        span_days=(last - first).days,
        scale=scale,
    )


def _y_axis(frame: _Frame, unit: str, y_label: str) -> str:
    decimals = _tick_decimals(frame.scale.step, unit)
    right = frame.left + frame.width
    parts = ['<g class="y-axis">']
    caption = " · ".join(part for part in (y_label, unit_caption(unit)) if part)
    if caption:
        parts.append(f'<text x="0" y="12" fill="{MUTED_COLOUR}" font-weight="600">{_text(caption)}</text>')
    for tick in frame.scale.ticks():
        y = _num(frame.y(tick))
        parts.append(
            f'<line x1="{_num(frame.left)}" y1="{y}" x2="{_num(right)}" y2="{y}" stroke="{GRID_COLOUR}"/>'
            f'<text x="{_num(frame.left - 8)}" y="{y}" dy="4" text-anchor="end" fill="{MUTED_COLOUR}">'
            f"{_text(format_value(tick, unit, decimals=decimals))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _x_axis(frame: _Frame) -> str:
    bottom = frame.top + frame.height
    last_day = date.fromordinal(frame.first_day.toordinal() + frame.span_days)
    parts = [
        f'<g class="x-axis"><line x1="{_num(frame.left)}" y1="{_num(bottom)}" '
        f'x2="{_num(frame.left + frame.width)}" y2="{_num(bottom)}" stroke="{AXIS_COLOUR}"/>'
    ]
    for day in _date_ticks(frame.first_day, last_day):
        x = _num(frame.x(day))
        parts.append(
            f'<line x1="{x}" y1="{_num(bottom)}" x2="{x}" y2="{_num(bottom + 4)}" stroke="{AXIS_COLOUR}"/>'
            f'<text x="{x}" y="{_num(bottom + 17)}" text-anchor="middle" fill="{MUTED_COLOUR}">'
            f"{_text(format_day(day))}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _series_markup(
    name: str, points: Sequence[tuple[date, float | None]], frame: _Frame, unit: str, colour: str, dash: str
) -> str:
    placed = [(frame.x(day), None if value is None else frame.y(value)) for day, value in points]
    lines = "".join(_run_markup(run, colour, dash, 2.2) for run in _runs(placed))
    # Invisible hover targets: the browser shows each point's <title> as a tooltip, no script needed.
    targets = "".join(
        f'<circle cx="{_num(frame.x(day))}" cy="{_num(frame.y(value))}" r="6" fill="{colour}" fill-opacity="0">'
        f"<title>{_text(f'{name} · {format_day(day)}: {format_value(value, unit)}')}</title></circle>"
        for day, value in points
        if value is not None
    )
    return f'<g class="series" data-series="{_text(name)}">{lines}{targets}</g>'


def _no_data(width: int, plot_bottom: float) -> str:
    middle = (PLOT_TOP_PX + plot_bottom) / 2
    return (
        f'<rect x="1" y="{PLOT_TOP_PX}" width="{width - 2}" height="{_num(max(plot_bottom - PLOT_TOP_PX, 20))}" '
        f'fill="#f6f8fa" stroke="{GRID_COLOUR}" rx="6"/>'
        f'<text class="no-data" x="{_num(width / 2)}" y="{_num(middle)}" dy="4" text-anchor="middle" '
        f'fill="{MUTED_COLOUR}">No data in this window</text>'
    )


def _legend_layout(
    cleaned: Mapping[str, Sequence[tuple[date, float | None]]], width: int
) -> tuple[list[_LegendItem], int]:
    """Flow legend entries left to right, wrapping at the chart width (text width estimated per character)."""
    items: list[_LegendItem] = []
    x, row = 0.0, 0
    for index, (name, points) in enumerate(cleaned.items()):
        has_data = any(value is not None for _, value in points)
        shown = _truncate(name) + ("" if has_data else " (no data)")
        item_width = 26 + len(shown) * CHAR_WIDTH_PX + 18
        if x > 0 and x + item_width > width:
            x, row = 0.0, row + 1
        colour = PALETTE[index % len(PALETTE)]
        items.append(_LegendItem(name, shown, colour, _dash(index), x, row))
        x += item_width
    return items, (row + 1 if items else 0)


def _legend_markup(items: Sequence[_LegendItem], first_row_y: float) -> str:
    if not items:
        return ""
    parts = ['<g class="legend">']
    for item in items:
        y = first_row_y + item.row * LEGEND_ROW_PX
        dash = f' stroke-dasharray="{item.dash}"' if item.dash else ""
        parts.append(
            f'<g class="legend-item" transform="translate({_num(item.x + 2)},{_num(y)})">'
            f"<title>{_text(item.name)}</title>"
            f'<line x1="0" y1="0" x2="20" y2="0" stroke="{item.colour}" stroke-width="2.5"{dash}/>'
            f'<text x="26" y="0" dy="4" fill="#24292f">{_text(item.shown)}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)


def _describe(cleaned: Mapping[str, Sequence[tuple[date, float | None]]], unit: str) -> str:
    """A sentence for screen readers: the date range and each series' latest value."""
    days = sorted({day for points in cleaned.values() for day, _ in points})
    if not days:
        return "No data."
    latest = []
    for name, points in cleaned.items():
        values = [value for _, value in points if value is not None]
        latest.append(f"{name}: latest {format_value(values[-1], unit)}" if values else f"{name}: no data")
    return f"Daily values from {format_day(days[0])} to {format_day(days[-1])}. " + "; ".join(latest) + "."


# ---------------------------------------------------------------- sparkline


def sparkline(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 28,
    unit: str = "",
    label: str = "Trend",
    colour: str = PALETTE[0],
) -> str:
    """A tiny evenly spaced line (gaps for None) with a dot on the latest value; no axes."""
    numbers = [_plottable(value) for value in values]
    defined = [value for value in numbers if value is not None]
    summary = (
        f"{label}: {format_value(defined[0], unit)} to {format_value(defined[-1], unit)}"
        if defined
        else f"{label}: no data"
    )
    parts = [_svg_open(width, height, summary, "sparkline")]
    if not defined:
        middle = _num(height / 2)
        parts.append(
            f'<line x1="2" y1="{middle}" x2="{width - 2}" y2="{middle}" stroke="{GRID_COLOUR}" stroke-dasharray="3 3"/>'
        )
    else:
        placed = _sparkline_points(numbers, min(defined), max(defined), width, height)
        parts += [_run_markup(run, colour, "", 1.6) for run in _runs(placed)]
        last_x, last_y = next((x, y) for x, y in reversed(placed) if y is not None)
        parts.append(f'<circle cx="{_num(last_x)}" cy="{_num(last_y)}" r="2.2" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _sparkline_points(
    numbers: Sequence[float | None], low: float, high: float, width: int, height: int
) -> list[tuple[float, float | None]]:
    pad = 3.0
    step = (width - 2 * pad) / (len(numbers) - 1) if len(numbers) > 1 else 0.0
    x0 = pad if len(numbers) > 1 else width / 2

    def y(value: float) -> float:
        if high == low:  # constant: a flat line through the middle
            return height / 2
        return pad + (high - value) / (high - low) * (height - 2 * pad)

    return [(x0 + index * step, None if value is None else y(value)) for index, value in enumerate(numbers)]


__all__ = ["DASHES", "PALETTE", "format_day", "format_value", "line_chart", "sparkline", "unit_caption"]
