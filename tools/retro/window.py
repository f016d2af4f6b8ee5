"""The windows a retro compares: a sprint (its days vs the same number of days before) or a deployment (the bake
period after it vs the bake period before it). Every window is half-open [start, end) in UTC.

A sprint end given as a date names the sprint's last day: `date(2024, 1, 14)` ends the window at 2024-01-15
00:00 UTC. A datetime end is exact and exclusive (an end at midnight is the start of that day), as everywhere
else in the product; the seed's `RetroAgent.run_sprint_retro(sprint_end=datetime(2024, 1, 14))` passes a
midnight end as the date it names. Naive datetimes are taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection

from store.repositories.summary import find_event
from tools.retro.model import RetroWindow
from tools.window import EARLIEST, LATEST_YEAR

MAX_WINDOW_DAYS = 366
MAX_BAKE_HOURS = MAX_WINDOW_DAYS * 24
MAX_LABEL_CHARS = 100
DEPLOYMENT_EVENT = "deployment"


class RetroInputError(ValueError):
    """A retro cannot be run with what was given; `field` names the input to fix (start, end, version, bake_hours)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def sprint_window(start: datetime | date, end: datetime | date, sprint_id: str | None = None) -> RetroWindow:
    """The sprint [start, end) with the window of equal length just before it as the baseline.

    `end` as a date means the end of that day (the sprint's last day is included); a datetime is exclusive.
    """
    start_at = _moment(start, "start")
    end_at = _moment(end, "end", end_of_day=True)
    if end_at <= start_at:
        raise RetroInputError(
            "end", f"the sprint ends ({end_at.isoformat()}) before or when it starts ({start_at.isoformat()})"
        )
    duration = end_at - start_at
    if duration > timedelta(days=MAX_WINDOW_DAYS):
        raise RetroInputError(
            "end", f"the sprint spans {duration.days} days; a retro covers at most {MAX_WINDOW_DAYS} days"
        )
    if start_at - duration < EARLIEST:
        raise RetroInputError("start", f"the baseline before {start_at.isoformat()} would reach before 1970")
    if sprint_id is not None:
        _label(sprint_id, "sprint_id")
    return RetroWindow("sprint", start_at, end_at, start_at - duration, start_at, sprint_id=sprint_id)


def deployment_window(
    connection: Connection,
    version: str,
    bake_hours: float = 24,
    deployed_at: datetime | None = None,
    *,
    now: datetime | None = None,
) -> RetroWindow:
    """[deployed_at, deployed_at + bake) against the bake period before the deployment.

    Without `deployed_at`, the time of the first `deployment` event whose `version` property is `version`. The
    retro needs the whole bake period to have passed (`now`, default the current time, is after it).
    """
    version = _label(version, "version")
    if isinstance(bake_hours, bool) or not isinstance(bake_hours, int | float) or not bake_hours > 0:
        raise RetroInputError("bake_hours", f"must be a number of hours above 0, got {bake_hours!r}")
    if bake_hours > MAX_BAKE_HOURS:
        raise RetroInputError("bake_hours", f"must be at most {MAX_BAKE_HOURS} ({MAX_WINDOW_DAYS} days)")
    bake = timedelta(hours=bake_hours)
    if deployed_at is None:
        found = find_event(connection, name=DEPLOYMENT_EVENT, property_name="version", value=version)
        if found is None:
            raise RetroInputError(
                "version",
                f"no {DEPLOYMENT_EVENT!r} event has version {version!r}; send one (event {DEPLOYMENT_EVENT!r} with "
                "properties.version) or give deployed_at",
            )
        deployed_at = found
    moment = _moment(deployed_at, "deployed_at")
    if moment - bake < EARLIEST:
        raise RetroInputError("deployed_at", "the baseline before the deployment would reach before 1970")
    current = _moment(now, "now") if now is not None else datetime.now(UTC)
    if moment + bake > current:
        raise RetroInputError(
            "bake_hours",
            f"the {bake_hours:g}-hour bake window of {version} (deployed {moment.isoformat()}) ends at "
            f"{(moment + bake).isoformat()}, which has not passed yet; run the retro after it or give a shorter "
            "bake_hours",
        )
    return RetroWindow(
        "deployment", moment, moment + bake, moment - bake, moment, version=version, deployed_at=moment
    )


def _moment(value: object, field: str, *, end_of_day: bool = False) -> datetime:
    """A UTC datetime from a date or datetime (naive = UTC); with `end_of_day`, a date → the next midnight.

    A datetime is taken as given (an end at midnight is exclusive): only a plain date names a whole last day.
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0), tzinfo=UTC) + timedelta(days=1 if end_of_day else 0)
    else:
        raise RetroInputError(field, f"must be a date or a datetime, got {value!r}")
    moment = moment.astimezone(UTC)
    if moment.year > LATEST_YEAR:
        raise RetroInputError(field, f"{moment.isoformat()} is after the year {LATEST_YEAR}")
    return moment


def _label(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL_CHARS or "\x00" in value:
        raise RetroInputError(field, f"must be non-empty text of at most {MAX_LABEL_CHARS} characters")
    return value.strip()
