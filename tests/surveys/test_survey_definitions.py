"""Survey definitions: every invalid input is refused with an error naming its field; the seed's `questions=[...]`
expands to the type's standard questions; the four default surveys are created once and never recreated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.database import Database
from tests.surveys.support import T0, Clock, definition, service
from tools.surveys.defaults import default_surveys
from tools.surveys.errors import SurveyInputError, SurveyStateError
from tools.surveys.model import (
    DisplayOption,
    QuestionType,
    Survey,
    SurveyTrigger,
    SurveyType,
    parse_survey,
)
from tools.surveys.standard_questions import STANDARD, standard_questions

RATING = {"question_id": "q1", "type": "rating", "text": "Rate it"}


def question(**overrides: Any) -> dict[str, Any]:
    base = {"question_id": "pick", "type": "single_choice", "text": "Pick one", "options": ["A", "B"]}
    return base | overrides


def refused(body: dict[str, Any]) -> SurveyInputError:
    with pytest.raises(SurveyInputError) as caught:
        parse_survey(body)
    return caught.value


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"survey_id": ""}, "survey_id"),
        ({"survey_id": "has space"}, "survey_id"),
        ({"survey_id": "_leading"}, "survey_id"),
        ({"survey_id": "x" * 101}, "survey_id"),
        ({"survey_id": 42}, "survey_id"),
        ({"survey_type": "happiness"}, "survey_type"),
        ({"trigger": ""}, "trigger"),
        ({"trigger": "9lives"}, "trigger"),
        ({"trigger": None}, "trigger"),
        ({"questions": []}, "questions"),
        ({"questions": [dict(RATING, question_id=f"q{i}") for i in range(6)]}, "questions"),
        ({"questions": "rating"}, "questions"),
        ({"questions": [RATING, dict(RATING, text="Again")]}, "questions"),
        ({"questions": [question(options=["Only"])]}, "questions[0].options"),
        ({"questions": [question(options=[])]}, "questions[0].options"),
        ({"questions": [question(options="A,B")]}, "questions[0].options"),
        ({"questions": [question(options=["A", "B", "A"])]}, "questions[0].options"),
        ({"questions": [question(options=["A", " A "])]}, "questions[0].options"),
        ({"questions": [question(type="multi_choice", options=["A"])]}, "questions[0].options"),
        ({"questions": [question(options=["A", ""])]}, "questions[0].options[1]"),
        ({"questions": [RATING, dict(RATING, question_id="q2", options=["1", "2"])]}, "questions[1].options"),
        ({"questions": [question(metric="pick_metric")]}, "questions[0].metric"),
        ({"questions": [{"question_id": "t", "type": "open_text", "text": "Say", "metric": "m"}]},
         "questions[0].metric"),
        ({"questions": [question(type="slider")]}, "questions[0].type"),
        ({"questions": [question(question_id="bad id")]}, "questions[0].question_id"),
        ({"questions": [question(text="  ")]}, "questions[0].text"),
        ({"questions": [question(required="yes")]}, "questions[0].required"),
        ({"questions": [question(colour="red")]}, "questions[0].colour"),
        ({"questions": [{"type": "rating", "text": "No id"}]}, "questions[0].question_id"),
        ({"questions": ["How was it?"]}, "questions[0]"),
        ({"questions": [question(translations={"de": {"text": "Wähle", "options": ["A"]}})]},
         "questions[0].translations.de.options"),
        ({"questions": [question(translations={"de": {"text": "Wähle"}})]}, "questions[0].translations.de.options"),
        ({"questions": [question(translations={"German": {"text": "Wähle", "options": ["A", "B"]}})]},
         "questions[0].translations.German"),
        ({"questions": [question(translations={"de_DE": {"text": "Wähle", "options": ["A", "B"]}})]},
         "questions[0].translations.de_DE"),
        ({"questions": [question(translations={"de": {"text": "", "options": ["A", "B"]}})]},
         "questions[0].translations.de.text"),
        ({"questions": [question(translations={"de": {"text": "W", "options": ["A", "B"], "hint": "x"}})]},
         "questions[0].translations.de"),
        ({"questions": [question(translations={"de": {"text": "W", "options": ["A", ""]}})]},
         "questions[0].translations.de.options[1]"),
        ({"questions": [question(translations=["de"])]}, "questions[0].translations"),
        ({"sampling_percentage": -0.1}, "sampling_percentage"),
        ({"sampling_percentage": 100.5}, "sampling_percentage"),
        ({"sampling_percentage": "50"}, "sampling_percentage"),
        ({"sampling_percentage": float("nan")}, "sampling_percentage"),
        ({"sampling_percentage": True}, "sampling_percentage"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": 1.5}, "delay_seconds"),
        ({"display_option": "sometimes"}, "display_option"),
        ({"display_option": "once", "max_displays": 2}, "max_displays"),
        ({"display_option": "until_answered", "max_displays": 0}, "max_displays"),
        ({"display_option": "recurring"}, "recurring_days"),
        ({"display_option": "recurring", "recurring_days": 0}, "recurring_days"),
        ({"recurring_days": 30}, "recurring_days"),
        ({"display_option": "until_answered", "recurring_days": 30}, "recurring_days"),
        ({"recontact_days": -1}, "recontact_days"),
        ({"ignore_global_recontact": "yes"}, "ignore_global_recontact"),
        ({"active": 1}, "active"),
        ({"starts_at": "2026-03-10T00:00:00Z", "ends_at": "2026-03-01T00:00:00Z"}, "ends_at"),
        ({"starts_at": "2026-03-10T00:00:00Z", "ends_at": "2026-03-10T00:00:00+00:00"}, "ends_at"),
        ({"starts_at": "2026-03-10T00:00:00"}, "starts_at"),
        ({"ends_at": "next tuesday"}, "ends_at"),
        ({"response_limit": 0}, "response_limit"),
        ({"trigger_context": {"feature": {"nested": True}}}, "trigger_context.feature"),
        ({"trigger_context": {"feature": []}}, "trigger_context.feature"),
        ({"trigger_context": ["feature"]}, "trigger_context"),
        ({"persona_segments": "agency"}, "persona_segments"),
        ({"persona_segments": ["agency", ""]}, "persona_segments[1]"),
        ({"name": "x" * 256}, "name"),
        ({"colour": "red"}, "colour"),
        ({"max_display": 3}, "max_display"),
    ],
)  # fmt: skip
def test_each_invalid_definition_names_its_field(overrides: dict[str, Any], field: str) -> None:
    error = refused(definition(**overrides))
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert error.message  # says what is expected


@pytest.mark.parametrize("missing", ["survey_id", "survey_type", "trigger", "questions"])
def test_a_missing_required_field_is_named(missing: str) -> None:
    body = definition()
    del body[missing]
    assert refused(body).field == missing


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SurveyInputError) as caught:
        parse_survey(["survey_id", "x"])
    assert caught.value.field == "body"


@pytest.mark.parametrize(
    ("bad", "message"), [("A\x00B", "NUL"), ("A\ud800B", "surrogate")], ids=["nul", "lone-surrogate"]
)
def test_nul_and_lone_surrogates_are_refused_in_every_text(bad: str, message: str) -> None:
    places: list[tuple[dict[str, Any], str]] = [
        ({"name": bad}, "name"),
        ({"questions": [question(text=bad)]}, "questions[0].text"),
        ({"questions": [question(options=["A", bad])]}, "questions[0].options[1]"),
        ({"questions": [question(translations={"de": {"text": bad, "options": ["A", "B"]}})]},
         "questions[0].translations.de.text"),
        ({"persona_segments": [bad]}, "persona_segments[0]"),
        ({"journey_stage": bad}, "journey_stage"),
    ]  # fmt: skip
    for overrides, field in places:
        error = refused(definition(**overrides))
        assert (error.field, message in error.message) == (field, True), overrides


def test_naive_datetimes_given_as_python_objects_are_refused() -> None:
    naive = datetime(2026, 3, 1, 12, 0)
    for name in ("starts_at", "ends_at"):
        with pytest.raises(SurveyInputError) as caught:
            Survey(
                survey_id="s", survey_type="nps", trigger="value_delivered", questions=[...], **{name: naive}
            )
        assert caught.value.field == name


def test_a_valid_definition_is_normalised() -> None:
    survey = parse_survey(
        definition(
            survey_type="NPS", trigger="Value_Delivered", persona_segments=["Agency"],
            starts_at="2026-03-01T00:00:00Z", ends_at="2026-03-31T00:00:00+02:00", sampling_percentage=50,
            questions=[question(type="Multi_Choice", options=[" A ", "B"]), RATING],
        )
    )  # fmt: skip
    assert survey.survey_type == SurveyType.NPS
    assert survey.trigger == "value_delivered" and survey.trigger_event == "report_generated"
    assert survey.persona_segments == ["agency"]
    assert survey.questions[0].type == "multi_choice" and survey.questions[0].options == ["A", "B"]
    assert survey.starts_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert survey.ends_at == datetime(2026, 3, 30, 22, tzinfo=UTC)
    assert survey.sampling_percentage == 50.0
    assert survey.display_option == DisplayOption.ONCE and survey.max_displays == 1
    assert survey.name == "pulse"


def test_any_event_name_is_a_trigger_and_fires_on_itself() -> None:
    survey = parse_survey(definition(trigger="report_exported"))
    assert (survey.trigger, survey.trigger_event) == ("report_exported", "report_exported")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Report Exported", "report_exported"),
        ("reportExported", "report_exported"),
        ("report-exported", "report_exported"),
        ("VALUE_DELIVERED", "value_delivered"),
        ("Value Delivered", "value_delivered"),
        ("Support Contact", "support_contact"),
    ],
)
def test_trigger_names_are_stored_the_way_ingestion_names_events(given: str, stored: str) -> None:
    """The ingest doors turn "Report Exported" into report_exported; a survey named so must listen to that."""
    assert parse_survey(definition(trigger=given)).trigger == stored


def test_other_survey_tools_spellings_of_question_fields_are_accepted() -> None:
    survey = parse_survey(definition(questions=[{"id": "q", "question": "Rate us", "type": "csat"}]))
    assert (survey.questions[0].question_id, survey.questions[0].text) == ("q", "Rate us")


def test_the_seed_ellipsis_expands_to_the_standard_questions_of_the_type() -> None:
    survey = Survey(
        survey_id="custom_survey",
        survey_type=SurveyType.FEATURE_SATISFACTION,
        trigger=SurveyTrigger.FEATURE_COMPLETED,
        trigger_context={"feature": "custom_feature"},
        questions=[...],
        persona_segments=["solo_podcaster"],
        journey_stage="feature_usage",
    )
    expected = [q["question_id"] for q in STANDARD[SurveyType.FEATURE_SATISFACTION]]
    assert [q.question_id for q in survey.questions] == expected == ["satisfaction", "effort", "comment"]
    assert [q.type for q in survey.questions] == ["csat", "ces", "open_text"]
    assert survey.trigger_event == "feature_used"


@pytest.mark.parametrize("survey_type", list(SurveyType))
def test_every_type_has_a_valid_standard_question_set(survey_type: SurveyType) -> None:
    survey = Survey(survey_id="s", survey_type=survey_type, trigger="x_happened", questions=[...])
    assert 1 <= len(survey.questions) <= 5
    assert [q.question_id for q in survey.questions] == [q["question_id"] for q in STANDARD[survey_type]]


def test_ellipsis_mixes_with_own_questions_and_counts_towards_the_limit() -> None:
    extra = {"question_id": "extra", "type": "rating", "text": "Extra"}
    survey = Survey(survey_id="s", survey_type="nps", trigger="x_happened", questions=[..., extra])
    assert [q.question_id for q in survey.questions] == ["nps", "comment", "extra"]
    with pytest.raises(SurveyInputError) as caught:  # 4 time-to-value questions + 2 = 6
        Survey(
            survey_id="s",
            survey_type="time_to_value",
            trigger="x",
            questions=[..., extra, dict(extra, question_id="e2")],
        )
    assert caught.value.field == "questions"


def test_editing_an_expanded_survey_never_changes_the_standard_set() -> None:
    survey = Survey(survey_id="s", survey_type="nps", trigger="x_happened", questions=[...])
    survey.questions[0].text = "Changed"
    assert standard_questions(SurveyType.NPS)[0]["text"] != "Changed"
    assert STANDARD[SurveyType.NPS][0]["text"] != "Changed"


def test_a_definition_survives_its_stored_form() -> None:
    original = parse_survey(
        definition(
            display_option="recurring", recurring_days=30, recontact_days=10, delay_seconds=60,
            starts_at="2026-03-01T00:00:00Z", trigger_context={"plan": ["pro", "agency"]},
            questions=[question(translations={"de": {"text": "Wähle", "options": ["Ä", "B"]}}), RATING],
        )
    )  # fmt: skip
    assert parse_survey(original.as_dict()) == original


def test_localized_shows_translated_labels_and_keeps_canonical_values() -> None:
    survey = parse_survey(
        definition(
            questions=[question(translations={"de": {"text": "Wähle", "options": ["Ä", "Be"]}}), RATING]
        )
    )
    german = survey.localized("de")
    assert german["language"] == "de"
    assert german["questions"][0]["text"] == "Wähle"
    assert german["questions"][0]["options"] == [{"value": "A", "label": "Ä"}, {"value": "B", "label": "Be"}]
    assert german["questions"][1]["scale"] == {"min": 1, "max": 5}
    assert survey.localized("fr")["language"] is None
    assert survey.localized("fr")["questions"][0]["text"] == "Pick one"


# ---- default surveys -------------------------------------------------------------------------------------------


def test_four_default_surveys_with_three_to_five_questions() -> None:
    surveys = {s.survey_id: s for s in default_surveys()}
    assert set(surveys) == {"time_to_value", "report_accuracy", "renewal_success", "support_incident"}
    for survey in surveys.values():
        assert 3 <= len(survey.questions) <= 5, survey.survey_id
    ttv = surveys["time_to_value"].question("time_to_value")
    assert ttv is not None and ttv.type == QuestionType.SINGLE_CHOICE
    assert ttv.options == ["<15 minutes", "15-60 minutes", "1-4 hours", "More than a day"]
    triggers = {s.survey_id: (str(s.trigger), s.trigger_event) for s in surveys.values()}
    assert triggers == {
        "time_to_value": ("value_delivered", "report_generated"),
        "report_accuracy": ("report_sent", "report_sent"),
        "renewal_success": ("campaign_ended", "campaign_ended"),
        "support_incident": ("support_contact", "support_ticket_opened"),
    }
    assert surveys["report_accuracy"].delay_seconds == 3600
    accuracy = surveys["report_accuracy"].question("accuracy_rating")
    assert accuracy is not None and accuracy.metric == "report_accuracy_rating"


def test_ensure_defaults_is_idempotent_and_does_not_recreate_after_edits(database: Database) -> None:
    clock = Clock()
    surveys = service(database, clock)
    assert surveys.ensure_defaults() == 4
    assert surveys.ensure_defaults() == 0
    assert sorted(s.survey_id for s in surveys.surveys()) == [
        "renewal_success", "report_accuracy", "support_incident", "time_to_value",
    ]  # fmt: skip
    surveys.update("time_to_value", {"name": "First report", "active": False})
    surveys.delete("support_incident")
    clock.advance(days=1)
    assert service(database, clock).ensure_defaults() == 0  # a restart
    stored = {s.survey_id: s for s in surveys.surveys()}
    assert set(stored) == {"renewal_success", "report_accuracy", "time_to_value"}
    assert (stored["time_to_value"].name, stored["time_to_value"].active) == ("First report", False)
    assert sorted(s.survey_id for s in surveys.surveys(active_only=True)) == [
        "renewal_success",
        "report_accuracy",
    ]


def test_create_get_update_delete(database: Database) -> None:
    surveys = service(database)
    created = surveys.create(definition())
    assert surveys.get("pulse") == created
    with pytest.raises(SurveyStateError) as taken:
        surveys.create(definition(name="Another"))
    assert taken.value.field == "survey_id"
    updated = surveys.update("pulse", {"sampling_percentage": 25, "persona_segments": ["agency"]})
    assert (updated.sampling_percentage, updated.persona_segments) == (25.0, ["agency"])
    assert surveys.get("pulse") == updated
    with pytest.raises(SurveyInputError) as invalid:  # the result is validated as a whole
        surveys.update("pulse", {"display_option": "recurring"})
    assert invalid.value.field == "recurring_days"
    with pytest.raises(SurveyInputError) as renamed:
        surveys.update("pulse", {"survey_id": "other"})
    assert renamed.value.field == "survey_id"
    assert surveys.get("pulse") == updated  # refused updates changed nothing
    surveys.delete("pulse")
    assert surveys.surveys() == []


def test_changing_the_display_option_does_not_keep_the_old_default_max_displays(database: Database) -> None:
    """A survey created `once` carries max_displays 1 only as that option's default; made recurring (or
    until_answered) it takes the new option's default instead of being stuck at one display."""
    surveys = service(database)
    surveys.create(definition())
    recurring = surveys.update("pulse", {"display_option": "recurring", "recurring_days": 30})
    assert recurring.max_displays is None
    again = surveys.update("pulse", {"display_option": "until_answered", "recurring_days": None})
    assert again.max_displays == 3
    explicit = surveys.update("pulse", {"max_displays": 5})
    assert explicit.max_displays == 5


def test_windowed_definitions_keep_their_moments(database: Database) -> None:
    surveys = service(database)
    surveys.create(definition(starts_at=T0.isoformat(), ends_at=(T0 + timedelta(days=7)).isoformat()))
    stored = surveys.get("pulse")
    assert (stored.starts_at, stored.ends_at) == (T0, T0 + timedelta(days=7))
