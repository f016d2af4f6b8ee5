"""Explicit measurements from a host app (the seed's MetricsTracker.track_* calls), validated and stored.

Durations, report accuracy and renewal outcomes are measurements: they go to metric_observations and replace the
event-derived value of the same unit (user, report, campaign) when metrics are computed, so nothing is counted
twice. Errors and support incidents are occurrences: they are stored as the canonical events (error_occurred,
support_ticket_opened) with a deterministic message id, so a retried call is stored once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from store.database import Database
from store.repositories.observations import Observation, insert_observation, persona_of
from tools.events.ingest import EventIngestor
from tools.events.model import CanonicalEvent
from tools.metrics.model import MetricCategory
from tools.personas import UNASSIGNED, PersonaRegistry

MAX_NAME_CHARS = 255
MAX_VALUE_MAGNITUDE = 1e15


class MetricInputError(ValueError):
    """A tracked value is invalid; `field` names the argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MetricInputError(field, "must be a non-empty string")
    if len(value) > MAX_NAME_CHARS:
        raise MetricInputError(field, f"is {len(value)} characters; the limit is {MAX_NAME_CHARS}")
    return value.strip()


def _number(value: Any, field: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricInputError(field, f"must be a finite number, got {value!r}")
    if abs(value) > MAX_VALUE_MAGNITUDE:  # sums of squares of larger values overflow a float
        raise MetricInputError(field, f"{value!r} is out of range (|value| ≤ 1e15)")
    if minimum is not None and value < minimum:
        raise MetricInputError(field, f"must be ≥ {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise MetricInputError(field, f"must be ≤ {maximum}, got {value!r}")
    return float(value)


class MetricRecorder:
    """Validates and stores explicit metric values. `clock` is injectable so tests and backfills set time."""

    def __init__(
        self,
        database: Database,
        personas: PersonaRegistry,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.database = database
        self.personas = personas
        self.ingestor = EventIngestor(database, personas)
        self.clock = clock

    def _moment(self, observed_at: datetime | None) -> datetime:
        moment = observed_at or self.clock()
        if moment.tzinfo is None:
            raise MetricInputError("observed_at", "has no UTC offset; pass a timezone-aware datetime")
        return moment.astimezone(UTC)

    def _persona(self, user_id: str | None, persona: str | None) -> str:
        if persona is not None:
            if persona not in self.personas.keys and persona != UNASSIGNED:
                known = ", ".join(self.personas.keys)
                raise MetricInputError("persona_segment", f"{persona!r} is not a known persona ({known})")
            return persona
        if user_id is None:
            return UNASSIGNED
        with self.database.read() as connection:
            return persona_of(connection, user_id) or UNASSIGNED

    def _observe(self, observation: Observation) -> Observation:
        with self.database.write() as connection:
            insert_observation(connection, observation)
        return observation

    def time_to_value(
        self, *, user_id: str, persona: str | None, seconds: float, value_type: str | None = None,
        feature: str | None = None, observed_at: datetime | None = None,
    ) -> Observation:  # fmt: skip
        user = _text(user_id, "user_id")
        dims = {k: v for k, v in (("value_type", value_type), ("feature", feature)) if v is not None}
        return self._observe(
            Observation(
                MetricCategory.TIME_TO_VALUE.value,
                value_type or "time_to_value",
                user,
                self._persona(user, persona),
                _number(seconds, "time_seconds", minimum=0),
                "seconds",
                self._moment(observed_at),
                dims,
            )
        )

    def report_accuracy(
        self, *, user_id: str | None, persona: str | None, report_id: str, accuracy: float,
        observed_at: datetime | None = None,
    ) -> Observation:  # fmt: skip
        report = _text(report_id, "report_id")
        score = _number(accuracy, "accuracy", minimum=0, maximum=1)
        user = _optional_text(user_id, "user_id")
        return self._observe(
            Observation(
                MetricCategory.REPORT_ACCURACY.value,
                "report_accuracy",
                user,
                self._persona(user, persona),
                score,
                "ratio",
                self._moment(observed_at),
                {"report_id": report},
            )
        )

    def renewal(
        self, *, user_id: str | None, persona: str | None, campaign_id: str, renewed: bool,
        observed_at: datetime | None = None,
    ) -> Observation:  # fmt: skip
        campaign = _text(campaign_id, "campaign_id")
        if not isinstance(renewed, bool):
            raise MetricInputError("renewed", f"must be true or false, got {renewed!r}")
        user = _optional_text(user_id, "user_id")
        return self._observe(
            Observation(
                MetricCategory.RENEWAL_SUCCESS.value,
                "renewal_success",
                user,
                self._persona(user, persona),
                1.0 if renewed else 0.0,
                "ratio",
                self._moment(observed_at),
                {"campaign_id": campaign},
            )
        )

    def custom(
        self, *, name: str, value: float, unit: str = "value", user_id: str | None = None,
        persona: str | None = None, dims: dict[str, Any] | None = None, observed_at: datetime | None = None,
    ) -> Observation:  # fmt: skip
        metric = _text(name, "name")
        user = _optional_text(user_id, "user_id")
        return self._observe(
            Observation(
                metric,
                metric,
                user,
                self._persona(user, persona),
                _number(value, "value"),
                _text(unit, "unit"),
                self._moment(observed_at),
                dict(dims or {}),
            )
        )

    def occurrence(
        self, *, event_name: str, user_id: str, persona: str | None, properties: dict[str, Any],
        observed_at: datetime | None = None,
    ) -> CanonicalEvent:  # fmt: skip
        """Store an occurrence as its canonical event (and the user's persona, when the caller gave one)."""
        user = _text(user_id, "user_id")
        moment = self._moment(observed_at)
        resolved = self._persona(user, persona)
        events = []
        if persona is not None:
            events.append(self._event("identify", "identify", user, {"persona": resolved}, moment))
        event = self._event("track", event_name, user, properties, moment)
        events.append(event)
        self.ingestor.ingest(events)
        return event

    @staticmethod
    def _event(
        kind: str, name: str, user_id: str, properties: dict[str, Any], at: datetime
    ) -> CanonicalEvent:
        key = f"{kind}|{name}|{user_id}|{at.isoformat()}|{sorted(properties.items())!r}"
        message_id = "fl-tracked-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
        return CanonicalEvent(message_id, kind, name, at, at, user_id=user_id, properties=properties,
                              context={"library": {"name": "feedbackloop.MetricsTracker"}})  # fmt: skip
