"""RetroWindow ⇄ the JSON kept in the graph state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import date, datetime, timedelta
from typing import Any

from store.database import Database
from tools.retro.model import RetroWindow
from tools.retro.window import RetroInputError, deployment_window, sprint_window

DEFAULT_BAKE_HOURS = 24
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks differ a little between a client and the service
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
    includes that day). "2026-11-27" and "20261127" are dates; anything with a time is a datetime."""
    value = str(request.get(name))
    try:
        if "T" not in value.upper() and ":" not in value and " " not in value.strip():
            return date.fromisoformat(value.strip())
        return datetime.fromisoformat(value)
    except ValueError:
        raise RetroInputError(
            name, f"{value!r} is not an ISO 8601 date or time (e.g. 2026-01-14 or 2026-01-14T00:00:00Z)"
        ) from None


def window_of_request(database: Database, request: Mapping[str, Any], *, now: datetime) -> RetroWindow:
    """The window a retro request asks for; RetroInputError names the field that is wrong."""
    kind = request.get("kind")
    if kind == "deployment":
        bake_hours = request.get("bake_hours")
        with database.read() as connection:
            return deployment_window(
                connection,
                str(request.get("version") or ""),
                bake_hours=DEFAULT_BAKE_HOURS if bake_hours is None else bake_hours,
                deployed_at=_deployed_at(request.get("deployed_at")),
                now=now,
            )
    if kind != "sprint":
        raise RetroInputError("kind", f"must be sprint or deployment, got {kind!r}")
    for name in ("start", "end"):
        if not request.get(name):
            raise RetroInputError(name, "a sprint retro needs start and end (ISO 8601)")
    start, end = request_moment(request, "start"), request_moment(request, "end")
    window = sprint_window(start, end, sprint_id=request.get("sprint_id"))
    if window.end > now + FUTURE_TOLERANCE:
        raise RetroInputError(
            "end",
            f"{window.end.isoformat()} is in the future; a retro compares finished periods (give the last finished "
            "day, or a time up to now)",
        )
    return window


def _deployed_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise RetroInputError("deployed_at", f"{value!r} is not an ISO 8601 time") from None
