"""What the survey tests share: a settable clock, survey definitions, events and counts of the stored rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from store.database import Database
from store.models import SurveyDisplayRow
from tools.events.model import CanonicalEvent
from tools.surveys.service import SurveyService

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_message_ids = itertools.count()


class Clock:
    """The service's injectable clock: tests move it by hand, nothing sleeps."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def definition(survey_id: str = "pulse", **overrides: Any) -> dict[str, Any]:
    """A valid survey listening to `feature_done` with one rating, one choice and one open-text question."""
    base: dict[str, Any] = {
        "survey_id": survey_id,
        "survey_type": "custom",
        "trigger": "feature_done",
        "questions": [
            {"question_id": "rating", "type": "rating", "text": "How was it?", "metric": "pulse_rating"},
            {"question_id": "channel", "type": "single_choice", "text": "Where?",
             "options": ["Web", "Mobile", "API"], "required": False},
            {"question_id": "comment", "type": "open_text", "text": "Anything else?", "required": False},
        ],
    }  # fmt: skip
    return base | overrides


def service(database: Database, clock: Clock | None = None, **options: Any) -> SurveyService:
    return SurveyService(database, clock=clock or Clock(), **options)


def with_surveys(
    database: Database, *definitions: dict[str, Any], clock: Clock | None = None
) -> SurveyService:
    """A service on `database` holding exactly `definitions` (no default surveys), created a second apart a
    year before T0 so they are evaluated in the order given."""
    creation = Clock(T0 - timedelta(days=365))
    creator = service(database, creation)
    for body in definitions:
        creator.create(body)
        creation.advance(seconds=1)
    return service(database, clock)


def track(user_id: str, name: str, when: datetime, **properties: Any) -> CanonicalEvent:
    return CanonicalEvent(
        f"s-{next(_message_ids)}", "track", name, when, when, user_id=user_id, properties=properties
    )


def identify(user_id: str, when: datetime = T0 - timedelta(days=30), **traits: Any) -> CanonicalEvent:
    return CanonicalEvent(
        f"si-{next(_message_ids)}", "identify", "identify", when, when, user_id=user_id, properties=traits
    )


def count_rows(database: Database, table: str) -> int:
    with database.read() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def row_counts(database: Database) -> dict[str, int]:
    tables = ("survey_displays", "survey_responses", "survey_answers", "metric_observations")
    return {table: count_rows(database, table) for table in tables}


def displays(database: Database, user_id: str | None = None) -> list[dict[str, Any]]:
    statement = select(SurveyDisplayRow.__table__).order_by(
        SurveyDisplayRow.triggered_at, SurveyDisplayRow.id
    )
    if user_id is not None:
        statement = statement.where(SurveyDisplayRow.user_id == user_id)
    with database.read() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def display_count(database: Database, survey_id: str) -> int:
    d = SurveyDisplayRow
    with database.read() as connection:
        statement = select(func.count()).select_from(d).where(d.survey_id == survey_id)
        return int(connection.execute(statement).scalar_one())
