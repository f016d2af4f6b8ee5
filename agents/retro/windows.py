"""RetroWindow ⇄ the JSON kept in the graph state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from store.database import Database
from tools.retro.model import RetroWindow
from tools.retro.window import RetroInputError, deployment_window, sprint_window

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


def request_moment(request: Mapping[str, Any], name: str) -> datetime | date:
    """A request's start/end: a datetime (an exclusive end), or a date for a date-only value (an end date
    includes that day)."""
    value = str(request.get(name))
    try:
        return date.fromisoformat(value) if len(value) == len("2026-01-14") else datetime.fromisoformat(value)
    except ValueError:
        raise RetroInputError(
            name, f"{value!r} is not an ISO 8601 date or time (e.g. 2026-01-14T00:00:00Z)"
        ) from None


def window_of_request(database: Database, request: Mapping[str, Any], *, now: datetime) -> RetroWindow:
    """The window a retro request asks for; RetroInputError names the field that is wrong."""
    kind = request.get("kind")
    if kind == "deployment":
        deployed_at = request.get("deployed_at")
        with database.read() as connection:
            return deployment_window(
                connection,
                str(request.get("version") or ""),
                bake_hours=request.get("bake_hours") or 24,
                deployed_at=datetime.fromisoformat(deployed_at) if deployed_at else None,
                now=now,
            )
    if kind != "sprint":
        raise RetroInputError("kind", f"must be sprint or deployment, got {kind!r}")
    for name in ("start", "end"):
        if not request.get(name):
            raise RetroInputError(name, "a sprint retro needs start and end (ISO 8601)")
    start, end = request_moment(request, "start"), request_moment(request, "end")
    return sprint_window(start, end, sprint_id=request.get("sprint_id"))
