"""Request and response shapes of the survey routes, how bodies are read, and how survey errors become HTTP answers.

Bodies are read like the experiment bodies (limited to `max_batch_bytes`, gzip allowed, strict JSON: NaN is a
400), refused when a database could not store them, then validated by a pydantic model; a body of the wrong shape
is a 422 naming the field, the same answer the service gives for a bad definition. Query and path parameters of
the survey routes answer the same way (`SurveyRoute`), so `days=0` is a 422 naming `days`. Survey errors map
once, here: input 422, state conflict 409, unknown survey or display 404.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from feedbackloop.api import domain_doors
from tools.surveys.errors import SurveyInputError, SurveyNotFoundError, SurveyStateError

Body = TypeVar("Body", bound=BaseModel)

# Patterns of the pydantic (Rust) regex engine, where `$` is the end of the text. Survey ids as the model
# allows them; display ids are hex today, but any short id without separators is looked up (404 if unknown).
SURVEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
DISPLAY_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
QUESTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TRIGGER_PATTERN = r"^[A-Za-z][A-Za-z0-9_ .:-]{0,254}$"
SCALAR: dict[str, JsonValue] = {"type": ["string", "number", "boolean", "null"]}
NO_NUL = r"^[^\x00]*$"  # PostgreSQL cannot compare text holding NUL: refused as input, never a 500


# ---- requests -----------------------------------------------------------------------------------------------


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    trigger: str = Field(
        pattern=TRIGGER_PATTERN,
        description="a journey trigger (value_delivered, report_sent, campaign_ended, support_contact, "
        "feature_completed, onboarding_completed) or the event name a survey listens to",
    )  # fmt: skip
    context: dict[str, Any] | None = Field(
        None, description="facts about the moment (property → string, number, boolean or null), matched "
        "against each survey's trigger_context",
        json_schema_extra={"maxProperties": 50, "additionalProperties": SCALAR},
    )  # fmt: skip
    feature: str | None = Field(None, min_length=1, max_length=255, description="sets context.feature")
    persona: str | None = Field(
        None, min_length=1, max_length=64, pattern=NO_NUL,
        description="the user's persona, if it is not stored yet (an identify call's `persona` trait sets it)",
    )  # fmt: skip
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN, description="render the survey in this language where translated"
    )


class RespondRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"anyOf": [{"required": ["display_id"]}, {"required": ["user_id"]}]}
    )
    display_id: str | None = Field(
        None, pattern=DISPLAY_ID_PATTERN, description="the display answered (from trigger or pending)"
    )
    user_id: str | None = Field(
        None, min_length=1, max_length=255, pattern=NO_NUL,
        description="without display_id: answers the user's latest display of this survey",
    )  # fmt: skip
    responses: dict[str, Any] = Field(description="question_id → answer (option text, list, score or text)")
    partial: bool = Field(False, description="save progress: required questions may still be missing")
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN, description="the language the user answered in (translated options)"
    )


# ---- responses ----------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str
    message: str = Field(description="starts with the offending field, e.g. `questions: a survey has 1–5 …`")
    field: str | None = Field(None, description="the offending input (422 and 409)")


class QuestionOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field the model gains later passes through
    question_id: str
    text: str
    type: str
    options: list[str]
    required: bool
    metric: str | None
    translations: dict[str, dict[str, Any]]


class SurveyOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # a field the model gains later passes through
    survey_id: str
    survey_type: str
    trigger: str
    questions: list[QuestionOut]
    trigger_context: dict[str, Any]
    persona_segments: list[str]
    journey_stage: str | None
    name: str
    sampling_percentage: float
    delay_seconds: int
    display_option: str
    max_displays: int | None
    recurring_days: int | None
    recontact_days: int | None
    ignore_global_recontact: bool
    active: bool
    starts_at: str | None
    ends_at: str | None
    response_limit: int | None
    webhook_url: str | None = Field(None, description="each completed response is POSTed here, signed")


class SurveyList(BaseModel):
    surveys: list[SurveyOut]


class ChoiceOut(BaseModel):
    value: str = Field(description="what to send back as the answer")
    label: str = Field(description="what to show, in the requested language")


class ScaleOut(BaseModel):
    min: int
    max: int


class LocalizedQuestion(BaseModel):
    question_id: str
    type: str
    required: bool
    text: str
    options: list[ChoiceOut] | None = Field(None, description="choice questions only")
    scale: ScaleOut | None = Field(None, description="numeric questions only")


class LocalizedSurvey(BaseModel):
    survey_id: str
    name: str
    survey_type: str
    language: str | None = Field(description="the language rendered, or null for the original texts")
    questions: list[LocalizedQuestion]


class Candidate(BaseModel):
    survey_id: str | None
    reason: str | None


class TriggerOut(BaseModel):
    survey_id: str | None
    display_id: str | None
    status: str | None = Field(description="shown (render it now) or pending (queued until show_after)")
    show_after: str | None
    reason: str | None = Field(
        description="why nothing is shown: no_matching_survey, context_mismatch, inactive, persona_not_targeted, "
        "sampled_out, response_limit_reached, already_answered, max_displays_reached, survey_recontact, "
        "global_recontact"
    )
    candidates: list[Candidate] = Field(description="every survey listening to the trigger, with its reason")
    survey: LocalizedSurvey | None


class PendingOut(BaseModel):
    display_id: str
    survey_id: str
    trigger: str
    triggered_at: str
    show_after: str
    survey: LocalizedSurvey


class PendingList(BaseModel):
    surveys: list[PendingOut]


class DisplayOut(BaseModel):
    id: str
    survey_id: str
    user_id: str
    persona: str
    trigger: str
    context: dict[str, Any]
    status: str = Field(description="pending, shown, answered or dismissed")
    triggered_at: str
    show_after: str
    shown_at: str | None
    closed_at: str | None


class ResponseOut(BaseModel):
    display_id: str
    survey_id: str
    user_id: str
    answers: dict[str, Any]
    partial: bool
    missing_required: list[str]
    duplicate: bool = Field(description="this submission repeated the stored response and changed nothing")
    submitted_at: str | None


class RateOut(BaseModel):
    shown: int
    answered: int
    rate: float | None
    interval: tuple[float, float] | None = Field(description="95 % Wilson interval")


class ScoreOut(BaseModel):
    n: int
    value: float | None = Field(description="NPS (−100…100) for nps questions, else the mean")
    interval: tuple[float, float] | None = Field(description="95 % t interval; null when n ≤ 1")
    kind: str = Field(description="nps or mean")
    promoters: int
    detractors: int


class QuestionResultsOut(BaseModel):
    question_id: str
    text: str
    type: str
    answered: int
    distribution: dict[str, int]
    score: ScoreOut | None
    score_by_persona: dict[str, ScoreOut]


class FunnelOut(BaseModel):
    triggered: int
    shown: int
    answered: int
    dismissed: int
    partial: int


class ResultsOut(BaseModel):
    survey_id: str
    start: str
    end: str
    persona: str | None
    displays: FunnelOut
    response_rate: RateOut
    response_rate_by_persona: dict[str, RateOut]
    questions: list[QuestionResultsOut]


class FreeTextOut(BaseModel):
    display_id: str
    survey_id: str
    question_id: str
    persona: str
    user_id: str
    text: str
    answered_at: str


class FreeTextList(BaseModel):
    answers: list[FreeTextOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "body is not valid JSON (or not gzip when it says so)"},
    401: {"model": ErrorBody, "description": "missing or invalid write key (when write keys are configured)"},
    404: {"model": ErrorBody, "description": "no survey (or display) has this id"},
    409: {"model": ErrorBody, "description": "valid but conflicting: id taken, display answered, answer changed"},
    413: {"model": ErrorBody, "description": "body larger than FEEDBACKLOOP_MAX_BATCH_BYTES"},
    422: {"model": ErrorBody, "description": "invalid input; `field` names it and the message starts with it"},
}  # fmt: skip

_QUESTION_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["question_id", "text"], "additionalProperties": False,
    "properties": {
        "question_id": {"type": "string", "pattern": QUESTION_ID_PATTERN},
        "text": {"type": "string", "minLength": 1, "maxLength": 500},
        "type": {"enum": ["single_choice", "multi_choice", "rating", "nps", "csat", "ces", "open_text"]},
        "options": {"type": "array", "items": {"type": "string"}, "description": "choice questions: 2–20"},
        "required": {"type": "boolean"},
        "metric": {"type": ["string", "null"], "description": "numeric questions: also record this metric"},
        "translations": {"type": "object", "description": 'language → {"text": …, "options": […]}'},
    },
}  # fmt: skip
SURVEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["survey_id", "survey_type", "trigger", "questions"],
    "additionalProperties": False,
    "properties": {
        "survey_id": {"type": "string", "pattern": SURVEY_ID_PATTERN},
        "survey_type": {"enum": ["time_to_value", "report_accuracy", "renewal_success", "support_incident",
                                 "feature_satisfaction", "nps", "custom"]},
        "trigger": {"type": "string", "pattern": TRIGGER_PATTERN, "description": "a journey trigger or any event name"},
        "questions": {"type": "array", "minItems": 1, "maxItems": 5, "items": _QUESTION_SCHEMA},
        "name": {"type": "string"}, "trigger_context": {"type": "object"},
        "persona_segments": {"type": "array", "items": {"type": "string"}, "description": "empty: everyone"},
        "journey_stage": {"type": ["string", "null"]},
        "sampling_percentage": {"type": "number", "minimum": 0, "maximum": 100},
        "delay_seconds": {"type": "integer", "minimum": 0, "maximum": 7_776_000},
        "display_option": {"enum": ["once", "until_answered", "recurring"]},
        "max_displays": {"type": ["integer", "null"]}, "recurring_days": {"type": ["integer", "null"]},
        "recontact_days": {"type": ["integer", "null"]}, "ignore_global_recontact": {"type": "boolean"},
        "active": {"type": "boolean"},
        "starts_at": {"type": ["string", "null"], "format": "date-time"},
        "ends_at": {"type": ["string", "null"], "format": "date-time"},
        "response_limit": {"type": ["integer", "null"], "minimum": 1},
        "webhook_url": {"type": ["string", "null"], "description": "http(s) URL; completed responses are POSTed"},
    },
    "example": {
        "survey_id": "export_satisfaction", "name": "Export satisfaction", "survey_type": "feature_satisfaction",
        "trigger": "feature_completed", "trigger_context": {"feature": "csv_export"},
        "persona_segments": ["agency", "podcast_network"], "display_option": "once", "delay_seconds": 0,
        "questions": [
            {"question_id": "satisfaction", "type": "csat", "text": "How satisfied are you with the export?",
             "metric": "export_csat"},
            {"question_id": "missing", "type": "multi_choice", "text": "What was missing?", "required": False,
             "options": ["Columns", "Date ranges", "Formats"]},
            {"question_id": "comment", "type": "open_text", "text": "Anything else?", "required": False},
        ],
    },
}  # fmt: skip
CHANGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        name: schema for name, schema in SURVEY_SCHEMA["properties"].items() if name != "survey_id"
    },
    "description": "any survey fields; survey_id only unchanged; the changed survey is validated as a whole",
    "example": {"active": False},
}


# ---- reading bodies and mapping errors ----------------------------------------------------------------------


def storable(payload: Any) -> Any:
    return domain_doors.storable(payload, SurveyInputError)


async def read_json(request: Request) -> Any:
    return await domain_doors.read_json(request, SurveyInputError)


async def read_body(request: Request, model: type[Body]) -> Body:
    """The body validated by `model`, or SurveyInputError naming the first bad field (HTTP 422)."""
    return await domain_doors.read_model(request, model, SurveyInputError)


SurveyRoute = domain_doors.parameter_route(SurveyInputError)


def install_survey_errors(app: FastAPI) -> None:
    domain_doors.install_domain_errors(
        app, domain="survey", input_error=SurveyInputError, state_error=SurveyStateError,
        not_found=SurveyNotFoundError,
    )  # fmt: skip
