"""The window every read door takes: `days` plus an optional ISO 8601 `end` (default now)."""

from __future__ import annotations

from tools.events.segment import PayloadError
from tools.window import Window, WindowError


def window_from(days: int, end: str | None) -> Window:
    try:
        return Window.parse(days, end)
    except WindowError as error:
        raise PayloadError("invalid_window", str(error)) from None
