"""Survey definitions: types, triggers, questions and the throttling settings, validated on construction.

`Survey(...)` accepts the seed's keywords (survey_id, survey_type, trigger, trigger_context, questions,
persona_segments, journey_stage) plus ours; `parse_survey` builds one from JSON (HTTP, CLI files) and names the
offending field of anything it refuses. An `...` (Ellipsis) among the questions stands for the standard
questions of the survey's type, so the seed's `questions=[...]` is a complete definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from tools.events.normalize import snake_case_event_name
from tools.surveys.errors import SurveyInputError

MAX_QUESTIONS = 5
MAX_OPTIONS = 20
MAX_TEXT_CHARS = 500
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
QUESTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TRIGGER_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_ .:-]{0,254}$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


class SurveyType(StrEnum):
    TIME_TO_VALUE = "time_to_value"
    REPORT_ACCURACY = "report_accuracy"
    RENEWAL_SUCCESS = "renewal_success"
    SUPPORT_INCIDENT = "support_incident"
    FEATURE_SATISFACTION = "feature_satisfaction"
    NPS = "nps"
    CUSTOM = "custom"


class SurveyTrigger(StrEnum):
    """Journey moments. A survey may also name any event as its trigger (e.g. "report_exported")."""

    VALUE_DELIVERED = "value_delivered"
    REPORT_SENT = "report_sent"
    CAMPAIGN_ENDED = "campaign_ended"
    SUPPORT_CONTACT = "support_contact"
    FEATURE_COMPLETED = "feature_completed"
    ONBOARDING_COMPLETED = "onboarding_completed"


# The ingested event that fires each journey trigger (TRACKING_PLAN.md "Reactions"); VALUE_DELIVERED fires on a
# user's first report_generated only.
TRIGGER_EVENTS: dict[str, str] = {
    SurveyTrigger.VALUE_DELIVERED: "report_generated",
    SurveyTrigger.REPORT_SENT: "report_sent",
    SurveyTrigger.CAMPAIGN_ENDED: "campaign_ended",
    SurveyTrigger.SUPPORT_CONTACT: "support_ticket_opened",
    SurveyTrigger.FEATURE_COMPLETED: "feature_used",
    SurveyTrigger.ONBOARDING_COMPLETED: "onboarding_completed",
}
FIRST_OCCURRENCE_TRIGGERS = {SurveyTrigger.VALUE_DELIVERED.value}


class QuestionType(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    RATING = "rating"
    NPS = "nps"
    CSAT = "csat"
    CES = "ces"
    OPEN_TEXT = "open_text"


# Inclusive integer scales of the numeric question types.
SCALES: dict[str, tuple[int, int]] = {
    QuestionType.RATING: (1, 5),
    QuestionType.NPS: (0, 10),
    QuestionType.CSAT: (1, 5),
    QuestionType.CES: (1, 7),
}
CHOICE_TYPES = {QuestionType.SINGLE_CHOICE.value, QuestionType.MULTI_CHOICE.value}


class DisplayOption(StrEnum):
    ONCE = "once"  # shown at most once, answered or not
    UNTIL_ANSWERED = "until_answered"  # re-asked on later triggers until answered, at most max_displays times
    RECURRING = "recurring"  # asked again every recurring_days, answered or not


DEFAULT_MAX_DISPLAYS = {DisplayOption.ONCE: 1, DisplayOption.UNTIL_ANSWERED: 3}


def _text(value: Any, name: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SurveyInputError(name, "must be a non-empty string")
    if len(value) > limit:
        raise SurveyInputError(name, f"is {len(value)} characters; the limit is {limit}")
    if "\x00" in value:
        raise SurveyInputError(name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SurveyInputError(name, "contains a lone surrogate (not valid UTF-8)") from None
    return value.strip()


def _number(value: Any, name: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise SurveyInputError(name, f"must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"≥ {low:g}"
        raise SurveyInputError(name, f"must be {bounds}, got {value!r}")
    return float(value)


def _whole(value: Any, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SurveyInputError(name, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise SurveyInputError(name, f"must be between {low} and {high}, got {value!r}")
    return value


def _enum(enum: type[StrEnum], value: Any, name: str) -> str:
    allowed = [member.value for member in enum]
    text = value.value if isinstance(value, StrEnum) else value
    if isinstance(text, str) and text.lower() in allowed:
        return text.lower()
    raise SurveyInputError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


@dataclass
class Question:
    question_id: str
    text: str
    type: str = QuestionType.SINGLE_CHOICE.value
    options: list[str] = field(default_factory=list)
    required: bool = True
    metric: str | None = None  # a numeric answer is also recorded as this metric's observation
    translations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if not isinstance(self.question_id, str) or not QUESTION_ID_PATTERN.fullmatch(self.question_id):
            raise SurveyInputError(f"{where}.question_id", "must be 1–64 letters, digits, '_', '.', '-'")
        self.text = _text(self.text, f"{where}.text")
        self.type = _enum(QuestionType, self.type, f"{where}.type")
        if not isinstance(self.required, bool):
            raise SurveyInputError(f"{where}.required", "must be true or false")
        self.options = self._checked_options(self.options, f"{where}.options")
        if self.metric is not None:
            if self.type not in SCALES:
                raise SurveyInputError(
                    f"{where}.metric", f"only numeric questions ({', '.join(SCALES)}) record a metric"
                )
            self.metric = _text(self.metric, f"{where}.metric", limit=64)
        if not isinstance(self.translations, Mapping):
            raise SurveyInputError(f"{where}.translations", "must be an object keyed by language code")
        for language, translated in self.translations.items():
            self._check_translation(language, translated, f"{where}.translations.{language}")

    def _checked_options(self, options: Any, name: str) -> list[str]:
        if self.type not in CHOICE_TYPES:
            if options:
                raise SurveyInputError(
                    name, f"only choice questions have options; {self.type} has a fixed scale"
                )
            return []
        if (
            not isinstance(options, Sequence)
            or isinstance(options, str)
            or not 2 <= len(options) <= MAX_OPTIONS
        ):
            raise SurveyInputError(name, f"a {self.type} question needs 2–{MAX_OPTIONS} options")
        checked = [_text(option, f"{name}[{i}]", limit=200) for i, option in enumerate(options)]
        if len(set(checked)) != len(checked):
            raise SurveyInputError(name, "options must be distinct")
        return checked

    def _check_translation(self, language: Any, translated: Any, name: str) -> None:
        if not isinstance(language, str) or not LANGUAGE_PATTERN.fullmatch(language):
            raise SurveyInputError(name, "language must be a code such as 'de' or 'pt-BR'")
        if not isinstance(translated, Mapping) or set(translated) - {"text", "options"}:
            raise SurveyInputError(name, 'must be {"text": …, "options": […]} (options for choice questions)')
        _text(translated.get("text"), f"{name}.text")
        if self.type in CHOICE_TYPES:
            labels = translated.get("options")
            if not isinstance(labels, list) or len(labels) != len(self.options):
                raise SurveyInputError(
                    f"{name}.options", f"must translate all {len(self.options)} options, in order"
                )
            for i, label in enumerate(labels):
                _text(label, f"{name}.options[{i}]", limit=200)

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.type)

    def localized(self, language: str | None) -> dict[str, Any]:
        """The question as a client renders it: texts in `language` when translated; answer values unchanged."""
        translated = self.translations.get(language or "", {})
        shown: dict[str, Any] = {
            "question_id": self.question_id, "type": self.type, "required": self.required,
            "text": translated.get("text", self.text),
        }  # fmt: skip
        if self.type in CHOICE_TYPES:
            labels = translated.get("options", self.options)
            shown["options"] = [
                {"value": v, "label": label} for v, label in zip(self.options, labels, strict=True)
            ]
        if self.scale is not None:
            shown["scale"] = {"min": self.scale[0], "max": self.scale[1]}
        return shown

    def as_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id, "text": self.text, "type": self.type, "options": list(self.options),
            "required": self.required, "metric": self.metric, "translations": dict(self.translations),
        }  # fmt: skip


@dataclass
class Survey:
    """A survey and when to ask it. Constructing one validates it (SurveyInputError names the field)."""

    survey_id: str
    survey_type: str | SurveyType
    trigger: str | SurveyTrigger
    questions: list[Any]
    trigger_context: dict[str, Any] = field(default_factory=dict)
    persona_segments: list[str] = field(default_factory=list)  # empty: every persona
    journey_stage: str | None = None
    name: str = ""
    sampling_percentage: float = 100.0
    delay_seconds: int = 0
    display_option: str | DisplayOption = DisplayOption.ONCE
    max_displays: int | None = None
    recurring_days: int | None = None
    recontact_days: int | None = None  # minimum days between two displays of this survey to one user
    ignore_global_recontact: bool = False
    active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    response_limit: int | None = None
    webhook_url: str | None = None  # each completed response is POSTed here, signed (Standard Webhooks)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.survey_id, str) or not ID_PATTERN.fullmatch(self.survey_id):
            raise SurveyInputError(
                "survey_id", "must be 1–100 letters, digits, '_', '.', '-', starting alphanumeric"
            )
        self.survey_type = SurveyType(_enum(SurveyType, self.survey_type, "survey_type"))
        self.trigger = _trigger(self.trigger)
        self.name = (
            _text(self.name, "name", limit=255) if self.name != "" else self.survey_id.replace("_", " ")
        )
        self.questions = _questions(self.questions, self.survey_type)
        self.trigger_context = _context(self.trigger_context)
        self.persona_segments = _personas(self.persona_segments)
        if self.journey_stage is not None:
            self.journey_stage = _text(self.journey_stage, "journey_stage", limit=64)
        self.sampling_percentage = _number(self.sampling_percentage, "sampling_percentage", low=0, high=100)
        self.delay_seconds = _whole(self.delay_seconds, "delay_seconds", low=0, high=90 * 86_400)
        self.display_option = DisplayOption(_enum(DisplayOption, self.display_option, "display_option"))
        self._validate_throttling()
        if not isinstance(self.active, bool):
            raise SurveyInputError("active", "must be true or false")
        for name in ("starts_at", "ends_at"):
            moment = getattr(self, name)
            if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
                raise SurveyInputError(name, "must be a timezone-aware datetime (ISO 8601 with an offset)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise SurveyInputError("ends_at", "must be after starts_at")
        if self.response_limit is not None:
            self.response_limit = _whole(self.response_limit, "response_limit", low=1, high=10**9)
        if self.webhook_url is not None:
            self.webhook_url = _webhook_url(self.webhook_url)

    def _validate_throttling(self) -> None:
        if self.max_displays is not None:
            self.max_displays = _whole(self.max_displays, "max_displays", low=1, high=100)
            if self.display_option == DisplayOption.ONCE and self.max_displays != 1:
                raise SurveyInputError("max_displays", "a survey shown once has max_displays 1")
        else:
            self.max_displays = DEFAULT_MAX_DISPLAYS.get(DisplayOption(self.display_option))
        if self.display_option == DisplayOption.RECURRING:
            if self.recurring_days is None:
                raise SurveyInputError("recurring_days", "a recurring survey needs recurring_days (e.g. 90)")
            self.recurring_days = _whole(self.recurring_days, "recurring_days", low=1, high=3650)
        elif self.recurring_days is not None:
            raise SurveyInputError("recurring_days", "only applies when display_option is recurring")
        if self.recontact_days is not None:
            self.recontact_days = _whole(self.recontact_days, "recontact_days", low=0, high=3650)
        if not isinstance(self.ignore_global_recontact, bool):
            raise SurveyInputError("ignore_global_recontact", "must be true or false")

    @property
    def survey_type_value(self) -> str:
        return str(self.survey_type)

    @property
    def trigger_event(self) -> str:
        """The ingested event name that fires this survey."""
        return TRIGGER_EVENTS.get(str(self.trigger), str(self.trigger))

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.question_id == question_id), None)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "questions":
                value = [q.as_dict() for q in value]
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, dict | list):
                value = type(value)(value)
            data[spec.name] = value
        return data

    def localized(self, language: str | None = None) -> dict[str, Any]:
        """What a client needs to render the survey, in `language` where translated."""
        return {
            "survey_id": self.survey_id, "name": self.name, "survey_type": str(self.survey_type),
            "language": language if language and self._translated_to(language) else None,
            "questions": [q.localized(language) for q in self.questions],
        }  # fmt: skip

    def _translated_to(self, language: str) -> bool:
        return any(language in q.translations for q in self.questions)


def _webhook_url(value: Any) -> str:
    url = _text(value, "webhook_url", limit=2000)
    if not re.fullmatch(r"https?://[^\s/?#]+\S*", url):
        raise SurveyInputError("webhook_url", f"must be an http(s) URL, got {url!r}")
    return url


def _trigger(value: Any) -> str:
    if isinstance(value, SurveyTrigger):
        return value.value
    if not isinstance(value, str) or not TRIGGER_PATTERN.fullmatch(value):
        known = ", ".join(t.value for t in SurveyTrigger)
        raise SurveyInputError("trigger", f"must be one of {known} or an event name; got {value!r}")
    # The name ingestion gives the event ("Report Exported" → report_exported), or the survey would never fire.
    return snake_case_event_name(value)


def _questions(value: Any, survey_type: SurveyType) -> list[Question]:
    from tools.surveys.standard_questions import standard_questions

    if not isinstance(value, Sequence) or isinstance(value, str):
        raise SurveyInputError("questions", f"must be a list of 1–{MAX_QUESTIONS} questions")
    expanded: list[Any] = []
    for item in value:
        expanded.extend(standard_questions(survey_type) if item is Ellipsis else [item])
    if not 1 <= len(expanded) <= MAX_QUESTIONS:
        raise SurveyInputError("questions", f"a survey has 1–{MAX_QUESTIONS} questions; got {len(expanded)}")
    questions = []
    for index, item in enumerate(expanded):
        question = _question(item, f"questions[{index}]")
        question.validate(f"questions[{index}]")
        questions.append(question)
    ids = [q.question_id for q in questions]
    duplicate = next((qid for qid in ids if ids.count(qid) > 1), None)
    if duplicate is not None:
        raise SurveyInputError("questions", f"question_id {duplicate!r} is used twice")
    return questions


def _question(item: Any, where: str) -> Question:
    if isinstance(item, Question):
        return Question(**item.as_dict())
    if not isinstance(item, Mapping):
        raise SurveyInputError(where, "must be an object with question_id, text and type")
    allowed = {spec.name for spec in fields(Question)}
    unknown = sorted(set(item) - allowed - {"id", "question"})
    if unknown:
        raise SurveyInputError(
            f"{where}.{unknown[0]}", f"is not a question field ({', '.join(sorted(allowed))})"
        )
    data = dict(item)
    if "id" in data:  # common spellings in other survey tools
        data.setdefault("question_id", data.pop("id"))
    if "question" in data:
        data.setdefault("text", data.pop("question"))
    for required in ("question_id", "text"):
        if required not in data:
            raise SurveyInputError(f"{where}.{required}", "is required")
    return Question(**data)


def _context(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SurveyInputError("trigger_context", "must be an object of property → value (or list of values)")
    for key, expected in value.items():
        if not isinstance(key, str) or not key:
            raise SurveyInputError("trigger_context", "keys must be non-empty strings")
        accepted = expected if isinstance(expected, list) else [expected]
        if not accepted or not all(v is None or isinstance(v, str | int | float | bool) for v in accepted):
            raise SurveyInputError(
                f"trigger_context.{key}", "must be a string, number, boolean or a list of them"
            )
    return dict(value)


def _personas(value: Any) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise SurveyInputError("persona_segments", "must be a list of persona keys (empty = every persona)")
    return [_text(p, f"persona_segments[{i}]", limit=64).lower() for i, p in enumerate(value)]


def context_matches(expected: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Every expected key is present with the expected value (or one of a list of accepted values)."""
    for key, wanted in expected.items():
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if key not in context or context[key] not in accepted:
            return False
    return True


def parse_survey(data: Any) -> Survey:
    """A Survey from JSON. Unknown fields are refused so a typo cannot silently change behaviour."""
    if not isinstance(data, Mapping):
        raise SurveyInputError("body", "must be a JSON object describing a survey")
    allowed = {spec.name for spec in fields(Survey)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SurveyInputError(unknown[0], f"is not a survey field (known: {', '.join(sorted(allowed))})")
    for required in ("survey_id", "survey_type", "trigger", "questions"):
        if required not in data:
            raise SurveyInputError(required, "is required")
    values = dict(data)
    for name in ("starts_at", "ends_at"):
        if isinstance(values.get(name), str):
            values[name] = _datetime(values[name], name)
    for name in ("trigger_context", "persona_segments"):
        if values.get(name) is None:
            values.pop(name, None)
    return Survey(**values)


def _datetime(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SurveyInputError(name, f"is not an ISO 8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        raise SurveyInputError(name, "needs a UTC offset (e.g. 2026-01-01T00:00:00Z)")
    return moment


def survey_from_stored(definition: Mapping[str, Any]) -> Survey:
    return parse_survey(definition)
