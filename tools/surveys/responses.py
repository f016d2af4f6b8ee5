"""Answers checked against their survey: each refusal names the question (`responses.<question_id>`).

Values are normalised to what analytics group by: a choice is stored as its canonical option text even when the
user answered with the translated label of their language; numeric scales are whole numbers within the scale.
An empty string or null is a skipped question, never an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tools.surveys.errors import SurveyInputError
from tools.surveys.model import CHOICE_TYPES, Question, QuestionType, Survey

MAX_OPEN_TEXT_CHARS = 5_000


@dataclass(frozen=True, slots=True)
class CheckedAnswers:
    answers: dict[str, Any]  # question_id → canonical value (a list for multi_choice)
    missing_required: list[str]  # required questions without an answer

    @property
    def complete(self) -> bool:
        return not self.missing_required


def check_answers(
    survey: Survey, responses: Any, *, language: str | None = None, already: Mapping[str, Any] | None = None
) -> CheckedAnswers:
    """Validate `responses` (question_id → value); `already` holds answers stored by an earlier partial response."""
    if not isinstance(responses, Mapping):
        raise SurveyInputError("responses", "must be an object of question_id → answer")
    answers: dict[str, Any] = {}
    for question_id, value in responses.items():
        question = survey.question(str(question_id))
        if question is None:
            known = ", ".join(q.question_id for q in survey.questions)
            raise SurveyInputError(
                f"responses.{question_id}", f"is not a question of survey {survey.survey_id!r} ({known})"
            )
        checked = _answer(question, value, language)
        if checked is not None:
            answers[question.question_id] = checked
    given = set(answers) | set(already or {})
    missing = [q.question_id for q in survey.questions if q.required and q.question_id not in given]
    return CheckedAnswers(answers, missing)


def _answer(question: Question, value: Any, language: str | None) -> Any:
    name = f"responses.{question.question_id}"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if question.type == QuestionType.OPEN_TEXT:
        return _open_text(value, name)
    if question.type in CHOICE_TYPES:
        labels = _labels(question, language)
        if question.type == QuestionType.SINGLE_CHOICE:
            return _choice(value, question, labels, name)
        if not isinstance(value, list) or not value:
            raise SurveyInputError(name, "must be a non-empty list of options (multi_choice)")
        chosen = [_choice(item, question, labels, f"{name}[{i}]") for i, item in enumerate(value)]
        if len(set(chosen)) != len(chosen):
            raise SurveyInputError(name, "lists the same option twice")
        return chosen
    low, high = question.scale or (0, 0)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        kind = "an NPS score" if question.type == QuestionType.NPS else f"a {question.type} score"
        raise SurveyInputError(name, f"must be {kind}: a whole number from {low} to {high}, got {value!r}")
    return value


def _labels(question: Question, language: str | None) -> dict[str, str]:
    """Accepted answer texts → canonical option: the options themselves and their translation in `language`."""
    accepted = {option: option for option in question.options}
    translated = question.translations.get(language or "", {}).get("options")
    if translated:
        accepted.update(zip(translated, question.options, strict=True))
    return accepted


def _choice(value: Any, question: Question, labels: Mapping[str, str], name: str) -> str:
    if isinstance(value, str) and value in labels:
        return labels[value]
    options = "; ".join(repr(option) for option in question.options)
    raise SurveyInputError(name, f"{value!r} is not one of the options: {options}")


def _open_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise SurveyInputError(name, "must be text")
    if len(value) > MAX_OPEN_TEXT_CHARS:
        raise SurveyInputError(name, f"is {len(value)} characters; the limit is {MAX_OPEN_TEXT_CHARS}")
    if "\x00" in value:
        raise SurveyInputError(name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SurveyInputError(name, "contains a lone surrogate (not valid UTF-8)") from None
    return value.strip()


def answer_rows(survey: Survey, answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flattened answer rows (without display, persona and time): one per choice of a multi_choice answer."""
    rows: list[dict[str, Any]] = []
    for question_id, value in answers.items():
        question = survey.question(question_id)
        assert question is not None, "answers are checked before they are flattened"
        values = value if isinstance(value, list) else [value]
        for index, item in enumerate(values):
            number = float(item) if isinstance(item, int) else None
            text = item if isinstance(item, str) else None
            rows.append({
                "question_id": question_id, "choice_index": index, "question_type": question.type,
                "value_number": number, "value_text": text,
            })  # fmt: skip
    return rows
