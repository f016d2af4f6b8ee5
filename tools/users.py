"""The user a host app talks about: what the seed's methods accept as `user=` (a plain id string works too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    """A user of the host product. `persona_segment` None means "look it up" (identify traits or rules)."""

    user_id: str
    persona_segment: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id.strip():
            raise ValueError("user_id must be a non-empty string")


def as_user(user: User | str) -> User:
    """Accept either a User or a bare user id."""
    if isinstance(user, User):
        return user
    if isinstance(user, str):
        return User(user_id=user)
    raise TypeError(f"user must be a User or a user id string, got {type(user).__name__}")
