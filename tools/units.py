"""How values are written for people: one formatter for every display (dashboard, charts, CLI tables)."""

from __future__ import annotations

import math
from datetime import date

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_value(value: float | None, unit: str, *, decimals: int | None = None) -> str:
    """`value` in `unit` for people: ratio → "42.5%", usd → "$1,240", hours → "5.2 h", x → "3.1×". None → "—"."""
    number = finite_number(value)
    if number is None:
        return "—"
    if unit == "ratio":
        return f"{number * 100:,.{_decimals(decimals, 1)}f}%"
    if unit == "usd":
        places = _decimals(decimals, 0 if abs(number) >= 100 else 2)
        return f"{'-' if number < 0 else ''}${abs(number):,.{places}f}"
    if unit == "seconds":
        return _format_seconds(number, decimals)
    suffixes = {"hours": " h", "minutes": " min", "x": "×"}
    default_places = {"hours": 1, "minutes": 1, "x": 1, "score": 0, "per_user_30d": 2, "count": 0}
    places = _decimals(decimals, default_places.get(unit, 2))
    return f"{number:,.{places}f}{suffixes.get(unit, '')}"


def unit_caption(unit: str) -> str:
    """What the unit means, for axis and card captions ("" when the formatted value says it already)."""
    captions = {
        "per_user_30d": "per active user per 30 days",
        "per_user": "per active user",
        "score": "score (−100 to 100)",
    }
    return captions.get(unit, "")


def _format_seconds(seconds: float, decimals: int | None) -> str:
    # Durations read best in the largest unit that keeps a small number.
    if abs(seconds) >= 5400:
        return format_value(seconds / 3600, "hours", decimals=decimals)
    if abs(seconds) >= 90:
        return format_value(seconds / 60, "minutes", decimals=decimals)
    return f"{seconds:,.{_decimals(decimals, 0)}f} s"


def _decimals(requested: int | None, default: int) -> int:
    return default if requested is None else requested


def format_day(day: date) -> str:
    """Like "Mar 3", with month names from a fixed table so the output does not depend on the locale."""
    return f"{MONTHS[day.month - 1]} {day.day}"


# ---------------------------------------------------------------- scales


def finite_number(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
