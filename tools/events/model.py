"""The canonical event: what every ingestion door (HTTP, Python, CLI, PostHog) turns its input into.

A plain frozen dataclass, already validated and normalised: snake_case name, UTC-aware timestamps, a message id.
The store writes these as they are; nothing below this point re-validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[str, ...] = ("track", "identify", "page", "screen", "group", "alias")

MAX_MESSAGE_ID_CHARS = 100


@dataclass(frozen=True, slots=True)
class CanonicalEvent:
    """One event after validation.

    `name` is the snake_case event name for track calls, the page/screen name for page/screen calls and the call
    type itself for identify, group and alias. For identify and group calls `properties` holds the traits.
    """

    message_id: str
    type: str
    name: str
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def traits(self) -> dict[str, Any]:
        """Traits of an identify/group call (stored in `properties`); empty for other types."""
        return self.properties if self.type in ("identify", "group") else {}
