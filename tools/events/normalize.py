"""Small normalisations every door shares: event names, timestamps, message ids."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
# Times outside these years are typos or sentinels (0001-01-01), and windows around them cannot be built.
MIN_YEAR, MAX_YEAR = 1970, 9000


class FieldError(ValueError):
    """One field of one event is wrong; `field` names it the way the client sent it (e.g. `timestamp`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def snake_case_event_name(name: str) -> str:
    """'Report Generated' → 'report_generated', 'reportGenerated' → 'report_generated', '$pageview' → 'pageview'."""
    stripped = name.strip()
    if _SNAKE.match(stripped):
        return stripped
    spaced = _CAMEL_BOUNDARY.sub("_", stripped).lower()
    return _NON_WORD.sub("_", spaced).strip("_")


def parse_timestamp(value: Any, field: str) -> datetime:
    """ISO 8601 text (or an aware datetime) → aware UTC datetime. A time without a zone is refused.

    A naive time would be silently read in the server's zone, shifting every event of a client by hours; the
    client is told instead.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError(field, f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        raise FieldError(field, f"must be an ISO 8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise FieldError(field, f"{value!r} has no UTC offset; send e.g. 2026-01-31T12:00:00Z or +01:00")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError(field, f"{value!r} is out of range") from None
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise FieldError(field, f"{value!r} is out of range (years {MIN_YEAR}–{MAX_YEAR})")
    return utc


def derive_message_id(item: Any) -> str:
    """A deterministic id for an event sent without messageId: the same payload always dedupes to itself."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "fl-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def correct_clock_skew(timestamp: datetime, sent_at: datetime | None, received_at: datetime) -> datetime:
    """Segment's correction for a client clock that is off: receivedAt − (sentAt − timestamp).

    Both client times come from the same (possibly wrong) clock, so their difference is trustworthy even when
    each alone is not.
    """
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)
