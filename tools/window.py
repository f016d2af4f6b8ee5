"""Time windows: half-open [start, end) in UTC, the unit every metric, KPI, rule and retro is computed over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_YEAR = 9000


class WindowError(ValueError):
    """A window cannot be built from what was given; the message names the field (days, end)."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise WindowError("end: a window needs timezone-aware datetimes (UTC)")
        if not self.start < self.end:
            raise WindowError(
                f"end: window start {self.start.isoformat()} is not before its end {self.end.isoformat()}"
            )

    @classmethod
    def last_days(cls, days: int, end: datetime | None = None) -> Window:
        """The `days` days up to `end` (default: now)."""
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3660:
            raise WindowError(f"days: must be a whole number from 1 to 3660, got {days!r}")
        end = end or datetime.now(UTC)
        if end.tzinfo is None:
            raise WindowError(f"end: {end.isoformat()} has no UTC offset; give e.g. 2026-01-31T00:00:00Z")
        end = end.astimezone(UTC)
        if not (EARLIEST + timedelta(days=2 * days) <= end and end.year <= LATEST_YEAR):
            raise WindowError(
                f"end: {end.isoformat()} with days={days} reaches before 1970 or after {LATEST_YEAR} "
                "(a window and its baseline must fit in that range)"
            )
        return cls(end - timedelta(days=days), end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> float:
        return self.duration.total_seconds() / 86_400

    @classmethod
    def parse(cls, days: int, end: str | None) -> Window:
        """From a door's options: `days` and an ISO 8601 `end` with offset (None = now). Errors name the field."""
        from tools.events.normalize import FieldError, parse_timestamp

        try:
            moment = parse_timestamp(end, "end") if end else None
        except FieldError as error:
            raise WindowError(str(error)) from None
        return cls.last_days(days, moment)

    def previous(self) -> Window:
        """The window of equal length just before this one (the baseline)."""
        return Window(self.start - self.duration, self.start)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def dates(self) -> list[date]:
        """Every UTC calendar day the window touches, in order (for daily series)."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}
