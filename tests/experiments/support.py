"""What the experiments tests share: a settable clock, definitions, events and reads of the stored rows."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from store.database import Database
from store.models import EventRow, ExperimentAssignmentRow, ExperimentRow
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.experiments.service import EXPOSURE_EVENT, Assignment, ExperimentService

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_message_ids = itertools.count()


class Clock:
    """The service's injectable clock: tests move it by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def definition(key: str = "exp", **overrides: Any) -> dict[str, Any]:
    """A valid two-arm A/B definition; `overrides` replace top-level fields."""
    base: dict[str, Any] = {
        "key": key,
        "name": f"Experiment {key}",
        "type": "onboarding",
        "variants": [
            {"name": "control", "weight": 0.5, "configuration": {"flow": "standard"}},
            {"name": "treatment", "weight": 0.5, "configuration": {"flow": "guided"}},
        ],
        "primary_metrics": ["onboarding_completion"],
    }
    return base | overrides


def track(user_id: str, name: str, when: datetime, **properties: Any) -> CanonicalEvent:
    return CanonicalEvent(
        f"t-{next(_message_ids)}", "track", name, when, when, user_id=user_id, properties=properties
    )


def identify(user_id: str, when: datetime = T0 - timedelta(days=30), **traits: Any) -> CanonicalEvent:
    return CanonicalEvent(
        f"i-{next(_message_ids)}", "identify", "identify", when, when, user_id=user_id, properties=traits
    )


def experiment_id(database: Database, key: str) -> int:
    with database.read() as connection:
        return int(connection.execute(select(ExperimentRow.id).where(ExperimentRow.key == key)).scalar_one())


def stored_rows(database: Database, key: str) -> dict[str, tuple[int, int]]:
    """user → (phase, variant index) as stored."""
    table = ExperimentAssignmentRow
    with database.read() as connection:
        rows = connection.execute(
            select(table.user_id, table.phase, table.variant).where(
                table.experiment_id == experiment_id(database, key)
            )
        )
        return {user: (phase, variant) for user, phase, variant in rows}


def exposures(database: Database, users: Iterable[str] | None = None) -> Counter[str]:
    """How many experiment_viewed rows the events table holds per user."""
    statement = (
        select(EventRow.user_id, func.count())
        .where(EventRow.name == EXPOSURE_EVENT)
        .group_by(EventRow.user_id)
    )
    if users is not None:
        statement = statement.where(EventRow.user_id.in_(list(users)))
    with database.read() as connection:
        return Counter({str(user): int(count) for user, count in connection.execute(statement)})


def exposure_properties(database: Database, user_id: str) -> list[dict[str, Any]]:
    with database.read() as connection:
        rows = connection.execute(
            select(EventRow.properties).where(EventRow.name == EXPOSURE_EVENT, EventRow.user_id == user_id)
        )
        return [dict(properties) for (properties,) in rows]


def assign_in_waves(
    service: ExperimentService,
    clock: Clock,
    key: str,
    users: Sequence[str],
    *,
    waves: int = 4,
    hours_apart: float = 6,
) -> list[Assignment]:
    """Assign `users` in `waves` requests `hours_apart`, so exposures spread over time as real traffic does."""
    assigned: list[Assignment] = []
    size = -(-len(users) // waves)
    for start in range(0, len(users), size):
        assigned += service.assign_many(key, list(users[start : start + size]))
        clock.advance(hours=hours_apart)
    return assigned


def exposed_users(database: Database, key: str) -> dict[str, tuple[int, datetime]]:
    """user → (variant index, first exposure) of the experiment's current phase, as stored."""
    table = ExperimentAssignmentRow
    with database.read() as connection:
        identifier, phase = connection.execute(
            select(ExperimentRow.id, ExperimentRow.current_phase).where(ExperimentRow.key == key)
        ).one()
        rows = connection.execute(
            select(table.user_id, table.variant, table.assigned_at).where(
                table.experiment_id == identifier, table.phase == phase
            )
        )
        return {user: (variant, assigned_at) for user, variant, assigned_at in rows}


def plant_conversions(
    database: Database, key: str, rates: Sequence[float], *, seed: int, event: str = "onboarding_completed"
) -> None:
    """Each exposed user converts with its arm's rate (by stored variant index), within 60 h of exposure."""
    rng = random.Random(seed)
    events = []
    for user, (variant, exposed_at) in sorted(exposed_users(database, key).items()):
        if rng.random() < rates[variant]:
            seconds = rng.randint(0, 60 * 3600)
            events.append(track(user, event, exposed_at + timedelta(seconds=seconds)))
    EventIngestor(database).ingest(events)
