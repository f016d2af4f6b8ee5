"""The seed's journey-survey snippets run as written (only the import changed), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from feedbackloop import JourneySurveySystem, Survey, SurveyTrigger, SurveyType, User
from store.database import Database
from tools.surveys.errors import SurveyInputError, SurveyStateError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def survey_system(database: Database, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    from feedbackloop.settings import get_settings

    monkeypatch.setenv("FEEDBACKLOOP_DATABASE_URL", database.url)
    get_settings.cache_clear()
    yield JourneySurveySystem(clock=clock)
    get_settings.cache_clear()


def count(database: Database, table: str) -> int:
    with database.read() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_value_delivered_snippet_runs_as_written(
    survey_system: JourneySurveySystem, database: Database
) -> None:
    user = User(user_id="seed-user", persona_segment="solo_podcaster")

    async def snippet() -> Any:
        # fmt: off
        survey = await survey_system.trigger_survey(
            user=user,
            trigger=SurveyTrigger.VALUE_DELIVERED,
            context={"value_type": "report_generated"},
            feature="report_generation"
        )
        response = await survey_system.submit_response(
            user=user,
            survey_id=survey.survey_id,
            responses={
                "time_to_value": "<15 minutes",
                "ease_of_setup": "Very Easy",
                "value_perceived": "Yes, significant value"
            }
        )
        # fmt: on
        return survey, response

    survey, response = asyncio.run(snippet())
    assert survey.survey_id == "time_to_value" and survey.survey_type == SurveyType.TIME_TO_VALUE
    assert [q.question_id for q in survey.questions] == [
        "time_to_value",
        "ease_of_setup",
        "value_perceived",
        "nps",
    ]
    assert (response.survey_id, response.user_id, response.partial, response.duplicate) == (
        "time_to_value", "seed-user", False, False,
    )  # fmt: skip
    assert response.answers["time_to_value"] == "<15 minutes"
    assert (count(database, "survey_responses"), count(database, "survey_answers")) == (1, 3)
    with database.read() as connection:
        display = connection.execute(text("SELECT persona, status, context FROM survey_displays")).one()
    assert (display.persona, display.status) == ("solo_podcaster", "answered")
    assert count(database, "surveys") == 4  # the defaults, created on first start


def test_custom_survey_snippet_runs_as_written(
    survey_system: JourneySurveySystem, database: Database
) -> None:
    user = User(user_id="custom-user", persona_segment="solo_podcaster")

    async def snippet() -> Any:
        # fmt: off
        survey = Survey(
            survey_id="custom_survey",
            survey_type=SurveyType.FEATURE_SATISFACTION,
            trigger=SurveyTrigger.FEATURE_COMPLETED,
            trigger_context={"feature": "custom_feature"},
            questions=[...],
            persona_segments=["solo_podcaster"],
            journey_stage="feature_usage"
        )
        # fmt: on
        created = await survey_system.create_survey(survey)
        shown = await survey_system.trigger_survey(
            user=user, trigger=SurveyTrigger.FEATURE_COMPLETED, feature="custom_feature"
        )
        other_feature = await survey_system.evaluate_trigger(
            User("u2", persona_segment="solo_podcaster"), SurveyTrigger.FEATURE_COMPLETED, feature="export"
        )
        other_persona = await survey_system.evaluate_trigger(
            User("u3", persona_segment="agency"), SurveyTrigger.FEATURE_COMPLETED, feature="custom_feature"
        )
        return created, shown, other_feature, other_persona

    created, shown, other_feature, other_persona = asyncio.run(snippet())
    assert shown is not None and shown.survey_id == created.survey_id == "custom_survey"
    assert [q.question_id for q in shown.questions] == ["satisfaction", "effort", "comment"]
    assert shown.journey_stage == "feature_usage"
    assert (other_feature.survey, other_feature.reason) == (None, "context_mismatch")
    assert (other_persona.survey, other_persona.reason) == (None, "persona_not_targeted")
    assert count(database, "surveys") == 5


def test_responses_results_and_free_text_through_the_seed_api(
    survey_system: JourneySurveySystem, database: Database, clock: Clock
) -> None:
    async def flow() -> Any:
        await survey_system.create_survey(
            {"survey_id": "custom_survey", "survey_type": "feature_satisfaction", "trigger": "feature_completed",
             "questions": [...], "persona_segments": ["solo_podcaster", "agency"]}
        )  # fmt: skip
        for index, (persona, satisfaction) in enumerate(
            [("solo_podcaster", 5), ("solo_podcaster", 3), ("agency", 4)]
        ):
            user = User(f"user-{index}", persona_segment=persona)
            survey = await survey_system.trigger_survey(user, SurveyTrigger.FEATURE_COMPLETED, feature="x")
            assert survey is not None
            await survey_system.submit_response(
                user,
                survey.survey_id,
                {"satisfaction": satisfaction, "effort": 2, "comment": f"mail me: u{index}@x.io"},
            )
        skipped = await survey_system.trigger_survey(
            User("user-9", persona_segment="agency"), "feature_completed"
        )
        assert skipped is not None
        pending = await survey_system.pending_surveys("user-9")
        decision = await survey_system.evaluate_trigger(
            User("user-8", persona_segment="agency"), "feature_completed"
        )
        await survey_system.dismiss_survey(decision.display_id)
        clock.now += timedelta(seconds=1)
        return (
            pending,
            await survey_system.get_results("custom_survey"),
            await survey_system.get_results("custom_survey", persona="agency"),
            await survey_system.free_text(survey_id="custom_survey"),
            await survey_system.free_text(survey_id="custom_survey", redact=False),
        )

    pending, results, agency, redacted, raw = asyncio.run(flow())
    assert pending == []  # shown at once, nothing queued
    assert results.displays["shown"] == 5 and results.displays["answered"] == 3
    assert results.response_rate.rate == pytest.approx(3 / 5)
    assert results.response_rate_by_persona["solo_podcaster"].rate == 1.0
    assert agency.response_rate.rate == pytest.approx(1 / 3)
    satisfaction = next(q for q in results.questions if q.question_id == "satisfaction")
    assert satisfaction.score is not None and satisfaction.score.value == pytest.approx(4.0)
    assert satisfaction.distribution == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}
    assert [row["text"] for row in redacted] == ["mail me: [email]"] * 3
    assert sorted(row["text"] for row in raw) == [f"mail me: u{i}@x.io" for i in range(3)]


def test_the_same_user_is_not_asked_twice_in_a_week(survey_system: JourneySurveySystem, clock: Clock) -> None:
    user = User(user_id="seed-user", persona_segment="solo_podcaster")

    async def flow() -> Any:
        await survey_system.create_survey(
            Survey(survey_id="custom_survey", survey_type=SurveyType.FEATURE_SATISFACTION,
                   trigger=SurveyTrigger.FEATURE_COMPLETED, questions=[...])
        )  # fmt: skip
        first = await survey_system.trigger_survey(
            user, SurveyTrigger.VALUE_DELIVERED, feature="report_generation"
        )
        blocked = await survey_system.evaluate_trigger(
            user, SurveyTrigger.FEATURE_COMPLETED, feature="custom_feature"
        )
        clock.now += timedelta(days=7)
        later = await survey_system.trigger_survey(
            user, SurveyTrigger.FEATURE_COMPLETED, feature="custom_feature"
        )
        return first, blocked, later

    first, blocked, later = asyncio.run(flow())
    assert first is not None and first.survey_id == "time_to_value"
    assert (blocked.survey, blocked.reason) == (None, "global_recontact")
    assert later is not None and later.survey_id == "custom_survey"


def test_the_seed_api_refuses_bad_input_and_stores_nothing(
    survey_system: JourneySurveySystem, database: Database
) -> None:
    with pytest.raises(SurveyInputError) as bad_type:
        Survey(
            survey_id="x", survey_type="happiness", trigger=SurveyTrigger.FEATURE_COMPLETED, questions=[...]
        )
    assert bad_type.value.field == "survey_type"

    async def flow() -> None:
        with pytest.raises(SurveyStateError) as taken:
            await survey_system.create_survey(
                Survey(
                    survey_id="time_to_value", survey_type=SurveyType.NPS, trigger="x_done", questions=[...]
                )
            )
        assert taken.value.field == "survey_id"
        with pytest.raises(SurveyStateError) as never_shown:
            await survey_system.submit_response("nobody", "time_to_value", {"time_to_value": "<15 minutes"})
        assert never_shown.value.field == "survey_id"
        survey = await survey_system.trigger_survey("someone", SurveyTrigger.VALUE_DELIVERED)
        assert survey is not None
        with pytest.raises(SurveyInputError) as wrong_option:
            await survey_system.submit_response(
                "someone", survey.survey_id,
                {"time_to_value": "under 15 minutes", "ease_of_setup": "Easy", "value_perceived": "No"},
            )  # fmt: skip
        assert wrong_option.value.field == "responses.time_to_value"

    asyncio.run(flow())
    assert (count(database, "surveys"), count(database, "survey_responses")) == (4, 0)
