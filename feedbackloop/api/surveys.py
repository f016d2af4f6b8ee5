"""Survey routes: definitions, trigger evaluation, the display lifecycle, responses, results and free text.

Reads need a `read` key; definitions an `admin` key; what a product's front-end or back-end calls with its key
(trigger, the pending list, shown, dismiss, respond) an `ingest` key (see docs/api.md). Each route is one call of
the survey service (or of tools.surveys.analytics), run in the threadpool because the store is synchronous.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from feedbackloop.api.access import Scope, require_scope
from feedbackloop.api.experiment_bodies import body_schema
from feedbackloop.api.state import AppState
from feedbackloop.api.survey_bodies import (
    CHANGES_SCHEMA,
    DISPLAY_ID_PATTERN,
    ERRORS,
    LANGUAGE_PATTERN,
    NO_NUL,
    SURVEY_ID_PATTERN,
    SURVEY_SCHEMA,
    DisplayOut,
    FreeTextList,
    PendingList,
    RespondRequest,
    ResponseOut,
    ResultsOut,
    SurveyList,
    SurveyOut,
    SurveyRoute,
    TriggerOut,
    TriggerRequest,
    read_body,
    read_json,
)
from tools.surveys.analytics import free_text_answers, survey_results
from tools.surveys.errors import SurveyInputError
from tools.surveys.service import SurveyService
from tools.users import User
from tools.window import Window, WindowError

router = APIRouter(tags=["surveys"], responses=ERRORS, route_class=SurveyRoute)
READ = [require_scope(Scope.READ)]
ADMIN = [require_scope(Scope.ADMIN)]
INGEST = [require_scope(Scope.INGEST)]

SurveyId = Annotated[str, Path(pattern=SURVEY_ID_PATTERN, description="the survey's id")]
DisplayId = Annotated[str, Path(pattern=DISPLAY_ID_PATTERN, description="the display's id")]
Days = Annotated[int, Query(ge=1, le=3660, description="window length in days, ending now")]
Persona = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=NO_NUL, description="only this persona")
]
Language = Annotated[
    str | None, Query(pattern=LANGUAGE_PATTERN, description="render texts in this language where translated")
]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.feedbackloop
    return state


def _service(request: Request) -> SurveyService:
    state = _state(request)
    return SurveyService(state.database, global_recontact_days=state.settings.survey_recontact_days)


def _user(user_id: str, persona: str | None = None) -> User:
    try:
        return User(user_id, persona_segment=persona)
    except ValueError as error:
        raise SurveyInputError("user_id", str(error)) from None


def _window(days: int) -> Window:
    try:
        return Window.last_days(days)
    except WindowError as error:
        raise SurveyInputError("days", str(error).removeprefix("days: ")) from None


def _display(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# ---- definitions --------------------------------------------------------------------------------------------


@router.get("/v1/surveys", dependencies=READ, response_model=SurveyList)
async def list_surveys(
    request: Request,
    active: Annotated[
        bool | None, Query(description="only active (true) or inactive (false) surveys")
    ] = None,
) -> dict[str, Any]:
    """Every survey in creation order (the four defaults first on a new database)."""
    found = await run_in_threadpool(_service(request).surveys)
    return {"surveys": [s.as_dict() for s in found if active is None or s.active == active]}


@router.post(
    "/v1/surveys", dependencies=ADMIN, status_code=201, response_model=SurveyOut,
    openapi_extra=body_schema(SURVEY_SCHEMA),
)  # fmt: skip
async def create_survey(request: Request, response: Response) -> dict[str, Any]:
    """A survey from its definition; 422 names the first invalid field, 409 if the id is taken."""
    definition = await read_json(request)
    survey = await run_in_threadpool(_service(request).create, definition)
    response.headers["Location"] = f"/v1/surveys/{survey.survey_id}"
    return survey.as_dict()


@router.post(
    "/v1/surveys/trigger", dependencies=INGEST, response_model=TriggerOut,
    openapi_extra=body_schema(TriggerRequest.model_json_schema()), response_model_exclude_unset=True,
)  # fmt: skip
async def trigger_survey(request: Request) -> dict[str, Any]:
    """Should this user see a survey now? The first survey listening to the trigger that the fatigue rules
    allow is recorded as a display: `shown` (render it now) or `pending` (it has a delay; it comes back from the
    pending list at `show_after`). Otherwise `survey` is null and `reason` says why."""
    body = await read_body(request, TriggerRequest)
    user = _user(body.user_id, body.persona)
    service = _service(request)
    decision = await run_in_threadpool(
        lambda: service.trigger(user, body.trigger, body.context, feature=body.feature)
    )
    return decision.as_dict(body.language)


@router.get("/v1/surveys/responses/text", dependencies=READ, response_model=FreeTextList)
async def free_text(
    request: Request,
    days: Days = 30,
    survey_id: Annotated[str | None, Query(pattern=SURVEY_ID_PATTERN, description="only this survey")] = None,
    persona: Persona = None,
    question_id: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="only this question")
    ] = None,
    contains: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="case-insensitive")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="most answers returned")] = 100,
    redact: Annotated[bool, Query(description="replace e-mail addresses and phone numbers")] = False,
) -> dict[str, Any]:
    """Open-text answers, newest first: raw by default (the team's own reading); `redact=true` for anything
    that leaves for an LLM or a wider audience."""
    window = _window(days)
    answers = await run_in_threadpool(
        lambda: free_text_answers(
            _state(request).database, window.start, window.end, survey_id=survey_id, persona=persona,
            question_id=question_id, contains=contains, limit=limit, redact=redact,
        )
    )  # fmt: skip
    return {"answers": answers}


@router.get("/v1/surveys/{survey_id}", dependencies=READ, response_model=SurveyOut)
async def get_survey(request: Request, survey_id: SurveyId) -> dict[str, Any]:
    """The survey's definition."""
    return (await run_in_threadpool(_service(request).get, survey_id)).as_dict()


@router.patch(
    "/v1/surveys/{survey_id}", dependencies=ADMIN, response_model=SurveyOut,
    openapi_extra=body_schema(CHANGES_SCHEMA),
)  # fmt: skip
async def update_survey(request: Request, survey_id: SurveyId) -> dict[str, Any]:
    """Change any fields but the id; the result is validated as a whole (422 names the field)."""
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise SurveyInputError("body", "must be a JSON object of the fields to change")
    return (await run_in_threadpool(_service(request).update, survey_id, changes)).as_dict()


@router.delete("/v1/surveys/{survey_id}", dependencies=ADMIN, status_code=204)
async def delete_survey(request: Request, survey_id: SurveyId) -> Response:
    """Delete the survey with its displays, responses and answers (deactivate it to keep its results)."""
    await run_in_threadpool(_service(request).delete, survey_id)
    return Response(status_code=204)


# ---- displays -----------------------------------------------------------------------------------------------


@router.get(
    "/v1/users/{user_id}/surveys/pending",
    dependencies=INGEST,
    response_model=PendingList,
    response_model_exclude_unset=True,
)
async def pending_surveys(
    request: Request,
    user_id: Annotated[str, Path(max_length=255, pattern=NO_NUL, description="the user's id")],
    language: Language = None,
) -> dict[str, Any]:
    """Surveys queued for the user (by ingested events or delayed triggers) that are due now, oldest first.
    Queued surveys nobody fetched for 14 days expire."""
    due = await run_in_threadpool(_service(request).pending, user_id)
    return {"surveys": [pending.as_dict(language) for pending in due]}


@router.post("/v1/surveys/displays/{display_id}/shown", dependencies=INGEST, response_model=DisplayOut)
async def display_shown(request: Request, display_id: DisplayId) -> dict[str, Any]:
    """The client rendered the survey (pending → shown). Idempotent."""
    return _display(await run_in_threadpool(_service(request).mark_shown, display_id))


@router.post("/v1/surveys/displays/{display_id}/dismiss", dependencies=INGEST, response_model=DisplayOut)
async def display_dismissed(request: Request, display_id: DisplayId) -> dict[str, Any]:
    """The user closed the survey without answering (→ dismissed). Idempotent; 409 once answered."""
    return _display(await run_in_threadpool(_service(request).dismiss, display_id))


# ---- responses and results ----------------------------------------------------------------------------------


@router.post(
    "/v1/surveys/{survey_id}/responses", dependencies=INGEST, status_code=201, response_model=ResponseOut,
    responses={200: {"model": ResponseOut, "description": "a repeat of the stored response (duplicate true)"}},
    openapi_extra=body_schema(RespondRequest.model_json_schema()),
)  # fmt: skip
async def respond(request: Request, response: Response, survey_id: SurveyId) -> dict[str, Any]:
    """Answers to one display: the given `display_id`, or the user's latest display of the survey. 201 for a new
    (or completed partial) response, 200 with `duplicate` true for a repeat; 409 when an answer would change."""
    body = await read_body(request, RespondRequest)
    user = _user(body.user_id) if body.user_id is not None else None
    service = _service(request)

    def submit() -> dict[str, Any]:
        return service.respond(
            body.responses, display_id=body.display_id, user=user, survey_id=survey_id, partial=body.partial,
            language=body.language,
        ).as_dict()  # fmt: skip

    stored = await run_in_threadpool(submit)
    if stored["duplicate"]:
        response.status_code = 200
    return stored


@router.get("/v1/surveys/{survey_id}/results", dependencies=READ, response_model=ResultsOut)
async def results(
    request: Request, survey_id: SurveyId, days: Days = 30, persona: Persona = None
) -> dict[str, Any]:
    """Over the last `days` days: displays and response rate (overall and per persona, with a 95 % Wilson
    interval), each numeric question's score (NPS or mean, 95 % interval, n) and every answer's count."""
    window = _window(days)
    service = _service(request)

    def compute() -> dict[str, Any]:
        survey = service.get(survey_id)
        return survey_results(service.database, survey, window.start, window.end, persona=persona).as_dict()

    return await run_in_threadpool(compute)
