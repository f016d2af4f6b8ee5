"""RetroWindow ⇄ the JSON kept in the graph state."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from tools.retro.model import RetroWindow

_DATETIMES = ("start", "end", "baseline_start", "baseline_end", "deployed_at")


def window_to_state(window: RetroWindow) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(window):
        value = getattr(window, f.name)
        data[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return data


def window_from_state(data: dict[str, Any]) -> RetroWindow:
    values: dict[str, Any] = {
        key: (datetime.fromisoformat(value) if key in _DATETIMES and value is not None else value)
        for key, value in data.items()
    }
    return RetroWindow(**values)
