"""The window every read door takes: `days` plus an optional ISO 8601 `end` (default now)."""

from __future__ import annotations

from datetime import datetime

from tools.events.normalize import FieldError, parse_timestamp
from tools.events.segment import PayloadError
from tools.window import Window, WindowError


def window_from(days: int, end: str | None) -> Window:
    try:
        moment = parse_timestamp(end, "end") if end else None
        return Window.last_days(days, moment)
    except (FieldError, WindowError) as error:
        raise PayloadError("invalid_window", str(error)) from None


def parse_end(end: str | None) -> datetime | None:
    return window_from(1, end).end if end else None
