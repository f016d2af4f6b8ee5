"""Responses: validated per question (errors name `responses.<question_id>`), partial then complete, idempotent
per display (a repeat stores nothing), final once given, metric observations exactly once, and one response when
eight threads submit the same display at once — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from store.database import Database
from store.models import MetricObservationRow, SurveyAnswerRow, SurveyResponseRow
from tests.surveys.support import T0, Clock, definition, displays, row_counts, service, with_surveys
from tools.surveys.errors import SurveyInputError, SurveyNotFoundError, SurveyStateError
from tools.surveys.model import parse_survey
from tools.surveys.responses import MAX_OPEN_TEXT_CHARS, check_answers
from tools.surveys.service import SurveyService
from tools.users import User

QUESTIONS: list[dict[str, Any]] = [
    {"question_id": "score", "type": "nps", "text": "Recommend us?", "metric": "nps"},
    {"question_id": "stars", "type": "rating", "text": "Rate it", "required": False, "metric": "stars"},
    {"question_id": "effort", "type": "ces", "text": "Effort?", "required": False},
    {"question_id": "plan", "type": "single_choice", "text": "Plan?", "options": ["Free", "Pro", "Agency"],
     "translations": {"de": {"text": "Tarif?", "options": ["Kostenlos", "Profi", "Agentur"]}}},
    {"question_id": "uses", "type": "multi_choice", "text": "Uses?", "options": ["Reports", "Sync", "API"],
     "required": False, "translations": {"de": {"text": "Nutzung?", "options": ["Berichte", "Sync", "API"]}}},
]  # fmt: skip
FULL = {"score": 9, "stars": 4, "effort": 2, "plan": "Pro", "uses": ["Reports", "API"]}


def full_survey(**overrides: Any) -> dict[str, Any]:
    return definition("full", questions=QUESTIONS) | overrides


@pytest.fixture
def surveys(database: Database) -> SurveyService:
    return with_surveys(database, full_survey())


def shown(surveys: SurveyService, user: str = "u1", **options: Any) -> str:
    decision = surveys.trigger(User(user, persona_segment="agency"), "feature_done", **({"at": T0} | options))
    assert decision.display_id is not None, decision.reason
    return decision.display_id


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"nope": 1}, "responses.nope"),
        ({"score": 7.5}, "responses.score"),
        ({"score": 11}, "responses.score"),
        ({"score": -1}, "responses.score"),
        ({"score": "9"}, "responses.score"),
        ({"score": True}, "responses.score"),
        ({"score": [9]}, "responses.score"),
        ({"stars": 0}, "responses.stars"),
        ({"stars": 6}, "responses.stars"),
        ({"effort": 8}, "responses.effort"),
        ({"effort": 0}, "responses.effort"),
        ({"plan": "Enterprise"}, "responses.plan"),
        ({"plan": "pro"}, "responses.plan"),
        ({"plan": ["Pro"]}, "responses.plan"),
        ({"plan": 1}, "responses.plan"),
        ({"uses": "Reports"}, "responses.uses"),
        ({"uses": []}, "responses.uses"),
        ({"uses": ["Reports", "Reports"]}, "responses.uses"),
        ({"uses": ["Reports", "Berichte"]}, "responses.uses[1]"),  # a German label without language="de"
        ({"uses": ["Reports", "Email"]}, "responses.uses[1]"),
    ],
)
def test_each_invalid_answer_names_its_question(answers: dict[str, Any], field: str) -> None:
    with pytest.raises(SurveyInputError) as caught:
        check_answers(parse_survey(full_survey()), FULL | answers)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_open_text_limits() -> None:
    survey = parse_survey(definition())
    for bad in ("x" * (MAX_OPEN_TEXT_CHARS + 1), "a\x00b", "a\udc00b", 42):
        with pytest.raises(SurveyInputError) as caught:
            check_answers(survey, {"rating": 3, "comment": bad})
        assert caught.value.field == "responses.comment"
    ok = check_answers(survey, {"rating": 3, "comment": "  fine  " + "x" * 100})
    assert ok.answers["comment"].startswith("fine")


def test_valid_answers_are_normalised() -> None:
    survey = parse_survey(full_survey())
    checked = check_answers(survey, FULL | {"score": 10.0, "effort": None, "stars": "  "})
    assert checked.answers == {"score": 10, "plan": "Pro", "uses": ["Reports", "API"]}  # skips dropped
    assert isinstance(checked.answers["score"], int)
    assert checked.complete
    translated = check_answers(
        survey, {"score": 0, "plan": "Agentur", "uses": ["Berichte", "API"]}, language="de"
    )
    assert translated.answers == {"score": 0, "plan": "Agency", "uses": ["Reports", "API"]}
    assert check_answers(survey, {"score": 5}).missing_required == ["plan"]
    assert check_answers(survey, {}, already={"score": 5}).missing_required == ["plan"]
    with pytest.raises(SurveyInputError) as caught:
        check_answers(survey, ["score", 5])
    assert caught.value.field == "responses"


def test_invalid_responses_store_nothing(database: Database, surveys: SurveyService) -> None:
    display = shown(surveys)
    before = row_counts(database)
    for answers, field in (
        ({"score": 11, "plan": "Pro"}, "responses.score"),
        ({"score": 9}, "responses.plan"),
    ):
        with pytest.raises(SurveyInputError) as caught:
            surveys.respond(answers, display_id=display, at=T0)
        assert caught.value.field == field
    with pytest.raises(SurveyInputError) as language:
        surveys.respond(FULL, display_id=display, language="Deutsch", at=T0)
    assert language.value.field == "language"
    assert row_counts(database) == before
    assert displays(database)[0]["status"] == "shown"


def test_missing_required_is_refused_unless_partial(database: Database, surveys: SurveyService) -> None:
    display = shown(surveys)
    with pytest.raises(SurveyInputError) as caught:
        surveys.respond({"score": 9, "stars": 5}, display_id=display, at=T0)
    assert caught.value.field == "responses.plan" and "partial" in caught.value.message
    partial = surveys.respond({"score": 9, "stars": 5}, display_id=display, partial=True, at=T0)
    assert (partial.partial, partial.missing_required, partial.duplicate) == (True, ["plan"], False)
    with database.read() as connection:
        stored = connection.execute(select(SurveyResponseRow.__table__)).mappings().one()
    assert (stored["partial"], stored["answers"]) == (True, {"score": 9, "stars": 5})
    assert displays(database)[0]["status"] == "shown"  # still open: the rest may follow
    completed = surveys.respond({"plan": "Agency"}, display_id=display, at=T0 + timedelta(minutes=5))
    assert (completed.partial, completed.missing_required) == (False, [])
    assert completed.answers == {"score": 9, "stars": 5, "plan": "Agency"}
    with database.read() as connection:
        stored = connection.execute(select(SurveyResponseRow.__table__)).mappings().one()
        answer_ids = sorted(connection.execute(select(SurveyAnswerRow.question_id)).scalars())
    assert (stored["partial"], stored["submitted_at"], stored["updated_at"]) == (
        False, T0, T0 + timedelta(minutes=5),
    )  # fmt: skip
    assert answer_ids == ["plan", "score", "stars"]
    row = displays(database)[0]
    assert (row["status"], row["closed_at"]) == ("answered", T0 + timedelta(minutes=5))


def test_a_partial_response_on_a_queued_display_marks_it_shown(database: Database) -> None:
    surveys = with_surveys(database, full_survey(delay_seconds=600))
    display = shown(surveys)
    assert displays(database)[0]["status"] == "pending"
    surveys.respond({"score": 3}, display_id=display, partial=True, at=T0 + timedelta(minutes=20))
    row = displays(database)[0]
    assert (row["status"], row["shown_at"]) == ("shown", T0 + timedelta(minutes=20))
    assert surveys.pending("u1", at=T0 + timedelta(hours=1)) == []


def test_a_repeated_response_is_a_duplicate_and_stores_nothing(
    database: Database, surveys: SurveyService
) -> None:
    display = shown(surveys)
    first = surveys.respond(FULL, display_id=display, at=T0)
    assert not first.duplicate and first.answers == FULL
    before = row_counts(database)
    assert before["survey_answers"] == 6  # five questions, two of the multi-choice options
    assert before["metric_observations"] == 2  # score (nps) and stars
    again = surveys.respond(FULL, display_id=display, at=T0 + timedelta(hours=1))
    subset = surveys.respond({"plan": "Pro"}, display_id=display, at=T0 + timedelta(hours=2))
    by_user = surveys.respond(FULL, user="u1", survey_id="full", at=T0 + timedelta(hours=3))
    for repeat in (again, subset, by_user):
        assert (repeat.duplicate, repeat.display_id, repeat.answers) == (True, display, FULL)
        assert repeat.submitted_at == T0  # the stored response, unchanged
    assert row_counts(database) == before


def test_answers_are_final(database: Database, surveys: SurveyService) -> None:
    display = shown(surveys)
    surveys.respond({"score": 9}, display_id=display, partial=True, at=T0)
    with pytest.raises(SurveyStateError) as contradicts_partial:
        surveys.respond({"score": 3, "plan": "Pro"}, display_id=display, at=T0)
    assert contradicts_partial.value.field == "responses.score"
    surveys.respond({"plan": "Pro"}, display_id=display, at=T0)
    before = row_counts(database)
    with pytest.raises(SurveyStateError) as contradicts:
        surveys.respond({"plan": "Free"}, display_id=display, at=T0)
    assert contradicts.value.field == "responses.plan"
    with pytest.raises(SurveyStateError) as adds_after_complete:
        surveys.respond({"effort": 3}, display_id=display, at=T0)
    assert adds_after_complete.value.field == "display_id"
    with pytest.raises(SurveyStateError):
        surveys.dismiss(display, at=T0)
    assert row_counts(database) == before
    assert isinstance(contradicts.value, SurveyInputError)  # a 4xx, mapped to 409 as a state error


def test_a_dismissed_display_cannot_be_answered(database: Database, surveys: SurveyService) -> None:
    display = shown(surveys)
    dismissed = surveys.dismiss(display, at=T0 + timedelta(minutes=1))
    assert (dismissed["status"], dismissed["closed_at"]) == ("dismissed", T0 + timedelta(minutes=1))
    assert surveys.dismiss(display, at=T0 + timedelta(hours=1))["closed_at"] == T0 + timedelta(minutes=1)
    before = row_counts(database)
    with pytest.raises(SurveyStateError) as by_id:
        surveys.respond(FULL, display_id=display, at=T0)
    assert by_id.value.field == "display_id" and "dismissed" in by_id.value.message
    with pytest.raises(SurveyStateError):
        surveys.respond(FULL, user="u1", survey_id="full", at=T0)
    assert row_counts(database) == before


def test_translated_labels_are_stored_as_canonical_options(
    database: Database, surveys: SurveyService
) -> None:
    display = shown(surveys)
    response = surveys.respond(
        {"score": 10, "plan": "Agentur", "uses": ["Berichte", "Sync"]},
        display_id=display,
        language="de",
        at=T0,
    )
    assert response.answers == {"score": 10, "plan": "Agency", "uses": ["Reports", "Sync"]}
    with database.read() as connection:
        texts = connection.execute(
            select(SurveyAnswerRow.question_id, SurveyAnswerRow.choice_index, SurveyAnswerRow.value_text)
            .where(SurveyAnswerRow.value_text.is_not(None))
            .order_by(SurveyAnswerRow.question_id, SurveyAnswerRow.choice_index)
        ).all()
        language = connection.execute(select(SurveyResponseRow.language)).scalar_one()
    assert [tuple(row) for row in texts] == [
        ("plan", 0, "Agency"),
        ("uses", 0, "Reports"),
        ("uses", 1, "Sync"),
    ]
    assert language == "de"


def test_respond_by_user_and_survey_finds_the_display(database: Database) -> None:
    surveys = with_surveys(database, full_survey(display_option="until_answered"))
    old = shown(surveys)
    surveys.dismiss(old, at=T0)
    current = shown(surveys, at=T0 + timedelta(days=8))
    response = surveys.respond(FULL, user=User("u1"), survey_id="full", at=T0 + timedelta(days=8))
    assert response.display_id == current  # the open display, not the older dismissed one
    assert {row["id"]: row["status"] for row in displays(database)} == {old: "dismissed", current: "answered"}
    with pytest.raises(SurveyInputError) as other_user:
        surveys.respond(FULL, display_id=current, user="u2")
    assert other_user.value.field == "user_id"
    with pytest.raises(SurveyInputError) as neither:
        surveys.respond(FULL, user="u1")
    assert neither.value.field == "display_id"


def test_a_survey_never_shown_cannot_be_answered(database: Database, surveys: SurveyService) -> None:
    with pytest.raises(SurveyStateError) as caught:
        surveys.respond(FULL, user="u1", survey_id="full", at=T0)
    assert caught.value.field == "survey_id" and "never shown" in caught.value.message
    with pytest.raises(SurveyNotFoundError):
        surveys.respond(FULL, user="u1", survey_id="no_such_survey", at=T0)
    with pytest.raises(SurveyNotFoundError):
        surveys.respond(FULL, display_id="no-such-display", at=T0)
    assert row_counts(database)["survey_responses"] == 0


def observations(database: Database) -> list[dict[str, Any]]:
    table = MetricObservationRow
    with database.read() as connection:
        rows = connection.execute(select(table.__table__).order_by(table.category)).mappings()
        return [dict(row) for row in rows]


def test_numeric_answers_with_a_metric_become_observations_once(database: Database) -> None:
    surveys = service(database, Clock())
    surveys.ensure_defaults()
    decision = surveys.trigger(User("u1", persona_segment="agency"), "report_sent", at=T0)
    assert decision.status == "pending"  # the accuracy survey waits an hour after the report is sent
    answered_at = T0 + timedelta(hours=2)
    answers = {"accuracy_rating": 4, "sponsor_questions": "No"}
    first = surveys.respond(
        {"accuracy_rating": 4}, display_id=decision.display_id, partial=True, at=answered_at
    )
    assert first.missing_required == ["sponsor_questions"]
    surveys.respond(
        answers | {"nps": 10}, display_id=decision.display_id, at=answered_at + timedelta(minutes=1)
    )
    surveys.respond(
        answers | {"nps": 10}, display_id=decision.display_id, at=answered_at + timedelta(minutes=2)
    )
    rows = observations(database)
    assert [(r["category"], r["value"], r["persona"], r["user_id"], r["name"]) for r in rows] == [
        ("nps", 10.0, "agency", "u1", "report_accuracy"),
        ("report_accuracy_rating", 4.0, "agency", "u1", "report_accuracy"),
    ]
    assert rows[1]["observed_at"] == answered_at and rows[0]["observed_at"] == answered_at + timedelta(
        minutes=1
    )
    assert rows[1]["dims"] == {
        "survey_id": "report_accuracy", "question_id": "accuracy_rating", "display_id": decision.display_id,
    }  # fmt: skip


def test_a_choice_question_never_becomes_an_observation(database: Database, surveys: SurveyService) -> None:
    display = shown(surveys)
    surveys.respond({"score": 6, "plan": "Free", "effort": 7}, display_id=display, at=T0)
    assert [(r["category"], r["value"]) for r in observations(database)] == [
        ("nps", 6.0)
    ]  # effort: no metric


def test_concurrent_submissions_of_one_display_store_one_response(database: Database) -> None:
    display = shown(with_surveys(database, full_survey()))
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[Any] = []
    errors: list[BaseException] = []

    def submit() -> None:
        own = SurveyService(database, clock=Clock(T0))
        barrier.wait()
        try:
            results.append(own.respond(FULL, display_id=display))
        except BaseException as error:  # collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == workers
    assert sorted(r.duplicate for r in results) == [False] + [True] * (workers - 1)
    assert all(r.answers == FULL and r.display_id == display for r in results)
    counts = row_counts(database)
    assert (counts["survey_responses"], counts["survey_answers"], counts["metric_observations"]) == (1, 6, 2)


def test_concurrent_contradicting_submissions_keep_the_first(database: Database) -> None:
    display = shown(with_surveys(database, full_survey()))
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(score: int) -> None:
        own = SurveyService(database, clock=Clock(T0))
        barrier.wait()
        try:
            own.respond({"score": score, "plan": "Pro"}, display_id=display)
            outcome = f"stored {score}"
        except SurveyStateError as error:
            outcome = error.field
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit, args=(score,)) for score in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stored = [o for o in outcomes if o.startswith("stored")]
    assert len(stored) == 1 and sorted(set(outcomes) - set(stored)) == ["responses.score"]
    with database.read() as connection:
        score = connection.execute(
            select(SurveyAnswerRow.value_number).where(SurveyAnswerRow.question_id == "score")
        ).scalar_one()
    assert stored == [f"stored {int(score)}"]
