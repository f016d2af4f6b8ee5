"""Explicit metric observations (values a host app measured itself), and the persona lookup they need."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from store.models import MetricObservationRow, UserRow


@dataclass(frozen=True, slots=True)
class Observation:
    category: str
    name: str
    user_id: str | None
    persona: str
    value: float
    unit: str
    observed_at: datetime
    dims: dict[str, Any] = field(default_factory=dict)


def insert_observation(connection: Connection, observation: Observation) -> None:
    connection.execute(
        insert(MetricObservationRow).values(
            category=observation.category,
            name=observation.name,
            user_id=observation.user_id,
            persona=observation.persona,
            value=observation.value,
            unit=observation.unit,
            observed_at=observation.observed_at,
            dims=observation.dims,
        )
    )


def persona_of(connection: Connection, user_id: str) -> str | None:
    """The stored persona of a user, None when the user is unknown."""
    return connection.execute(select(UserRow.persona).where(UserRow.id == user_id)).scalar_one_or_none()
