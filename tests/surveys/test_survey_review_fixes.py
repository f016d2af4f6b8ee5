"""Edge cases a review of the survey doors found: each was a bug, each stays fixed (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store.database import Database
from store.repositories.survey_analytics import AnswerSums
from tests.surveys.support import T0, definition, with_surveys
from tools.surveys.analytics import score
from tools.surveys.errors import SurveyInputError
from tools.surveys.model import parse_survey
from tools.users import User


@pytest.mark.parametrize("field", ["survey_id", "trigger"])
def test_a_trailing_newline_is_not_a_valid_identifier(field: str) -> None:
    with pytest.raises(SurveyInputError) as error:
        parse_survey(definition() | {field: definition()[field] + "\n"})
    assert error.value.field == field


def test_a_display_answered_under_another_survey_is_refused(database: Database) -> None:
    surveys = with_surveys(database, definition("pulse"), definition("other", trigger="other_done"))
    shown = surveys.trigger("u1", "feature_done", at=T0)
    with pytest.raises(SurveyInputError) as error:
        surveys.respond({"rating": 4}, display_id=shown.display_id, survey_id="other", at=T0)
    assert error.value.field == "display_id" and "'pulse'" in str(error.value)


def test_a_persona_given_in_any_case_is_targeted(database: Database) -> None:
    surveys = with_surveys(database, definition(persona_segments=["agency"]))
    decision = surveys.trigger(User("u1", persona_segment="Agency"), "feature_done", at=T0)
    assert (decision.status, decision.reason) == ("shown", None)


def test_an_expired_queued_display_does_not_use_up_a_once_survey(database: Database) -> None:
    surveys = with_surveys(database, definition(delay_seconds=3600))
    queued = surveys.trigger("u1", "feature_done", at=T0)
    assert queued.status == "pending"
    later = T0 + timedelta(days=30)  # the queued display expired unseen (14 days after it came due)
    again = surveys.trigger("u1", "feature_done", at=later)
    assert (again.status, again.reason) == ("pending", None) and again.display_id != queued.display_id


def test_score_intervals_stay_on_their_scale() -> None:
    nps = score("nps", AnswerSums(n=3, promoters=2, detractors=1))
    assert nps.interval == (-100.0, 100.0)
    rating = score("rating", AnswerSums(n=2, total=9.0, sum_squares=41.0))  # 4 and 5
    assert rating.interval is not None and rating.interval[1] == 5.0 and rating.interval[0] >= 1.0
